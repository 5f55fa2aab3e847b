"""The payment service over real RabbitMQ: a ticket_completed delivered twice opens one invoice
(amount from the catalogue copy, not from the event); 20 duplicate webhooks at once, on
PostgreSQL, produce exactly one state change, one receipt, one event and one journal entry; a
provider outage, with two replicas sweeping, delays the charge but never the invoice, and the
provider charges once."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest
from nameko.amqp.publish import Publisher
from nameko.standalone.rpc import ClusterRpcProxy
from sqlalchemy import create_engine, func, select

from mpp_chassis.migrate import upgrade
from mpp_chassis.outbox import event_exchange
from mpp_contracts.envelope import make_envelope
from mpp_payment.adapters.tables import (
    charge_attempts,
    journal_lines,
    metadata,
    notifications,
    payments,
)
from mpp_payment.domain import signatures
from tests.support import fake_provider
from tests.support.fake_provider import FakeProvider
from tests.support.infra import queue_info, wait_until
from tests.support.mall import free_port

pytestmark = pytest.mark.integration

SECRET = "integration-simulator-secret"
HANDLER_QUEUE = "evt-queue-ticket_completed--payment.handle_ticket_completed"


def start_payment(container_factory, amqp_uri: str, url: str, **changes):
    from mpp_payment.service import PaymentService

    upgrade("payment", url)
    container = container_factory(
        PaymentService,
        {
            "AMQP_URI": amqp_uri,
            "DB_URL": url,
            "WEB_SERVER_ADDRESS": f"127.0.0.1:{free_port()}",
            "MALL_ID": "mpp-test",
            "SIMULATOR_SECRET": SECRET,
            "OUTBOX_POLL_SECONDS": 0.2,
            "EXPIRY_SWEEP_SECONDS": 3600,
            "max_workers": 25,
            **changes,
        },
    )
    container.start()
    return container


def ticket_completed(ticket_id: str, service_id: str, fee: int) -> dict:
    now = datetime.now(UTC).isoformat()
    return make_envelope(
        "ticket_completed",
        {
            "ticket_id": ticket_id,
            "journey_id": ticket_id,
            "number": "P-007",
            "agency_id": "agency-1",
            "service_id": service_id,
            "service_code": "PASPOR",
            "issued_at": now,
            "counter_id": "c1",
            "fee_idr": fee,
            "called_at": now,
            "started_at": now,
            "completed_at": now,
            "waiting_seconds": 1,
            "serving_seconds": 1,
        },
        source="queue",
        mall="mpp-test",
    )


def publish(amqp_uri: str, envelope: dict) -> None:
    Publisher(amqp_uri, use_confirms=True).publish(
        envelope,
        exchange=event_exchange("queue"),
        routing_key=envelope["type"],
        declare=[event_exchange("queue")],
        message_id=envelope["id"],
    )


def test_ticket_completed_delivered_twice_opens_one_invoice(
    container_factory, amqp_uri, vhost, db_url_factory
):
    url = db_url_factory("payment")
    start_payment(container_factory, amqp_uri, url)
    engine = create_engine(url)
    service_id = str(uuid.uuid4())
    plugged = make_envelope(
        "service_plugged",
        {
            "service_id": service_id,
            "agency_id": "agency-1",
            "code": "PASPOR",
            "name": "Paspor",
            "fee_idr": 350000,
            "sla_minutes": 60,
            "prefix": "P",
        },
        source="queue",
        mall="mpp-test",
    )
    publish(amqp_uri, plugged)

    def catalogue_known():
        with engine.connect() as conn:
            return conn.execute(
                select(func.count()).select_from(metadata.tables["catalogue_services"])
            ).scalar_one()

    wait_until(catalogue_known, message="catalogue copy")

    ticket_id = str(uuid.uuid4())
    event = ticket_completed(ticket_id, service_id, fee=1)  # the event's fee is not trusted
    publish(amqp_uri, event)
    publish(amqp_uri, event)  # the broker (or the outbox after a crash) delivers it again
    sentinel = str(uuid.uuid4())
    publish(amqp_uri, ticket_completed(sentinel, service_id, fee=1))

    def count(ticket: str) -> int:
        with engine.connect() as conn:
            return conn.execute(
                select(func.count()).where(payments.c.ticket_id == ticket)
            ).scalar_one()

    wait_until(lambda: count(sentinel) == 1, message="sentinel invoice")
    wait_until(  # management statistics appear after a few seconds
        lambda: queue_info(vhost, HANDLER_QUEUE).get("messages") == 0,
        timeout=30,
        interval=0.5,
        message="handler queue drained",
    )
    assert count(ticket_id) == 1
    with engine.connect() as conn:
        amount = conn.execute(
            select(payments.c.amount_idr).where(payments.c.ticket_id == ticket_id)
        ).scalar_one()
        outbox = metadata.tables["outbox"]
        requested = [
            json.loads(b)["payload"]["ticket_id"]
            for b in conn.execute(
                select(outbox.c.body).where(outbox.c.event_type == "payment_requested")
            ).scalars()
        ]
    assert amount == 350000
    assert requested.count(ticket_id) == 1
    engine.dispose()


@pytest.mark.postgres
def test_twenty_concurrent_duplicate_webhooks_change_state_once(
    container_factory, amqp_uri, pg_url_factory
):
    url = pg_url_factory("mpp_payment")
    container = start_payment(container_factory, amqp_uri, url)
    engine = create_engine(url)
    ticket_id = str(uuid.uuid4())
    publish(amqp_uri, ticket_completed(ticket_id, "svc-unknown", fee=75000))

    def invoice():
        with engine.connect() as conn:
            return conn.execute(
                select(payments.c.id).where(payments.c.ticket_id == ticket_id)
            ).scalar_one_or_none()

    payment_id = wait_until(invoice, message="invoice")
    body = json.dumps(
        {"payment_id": payment_id, "status": "paid", "amount_idr": 75000, "provider_ref": "SIM-1"}
    )
    headers = {"x-simulator-signature": signatures.simulator_signature(body.encode(), SECRET)}
    with ClusterRpcProxy(container.config) as cluster:
        replies = [
            cluster.payment.handle_notification.call_async("simulator", headers, body)
            for _ in range(20)
        ]
        results = [reply.result() for reply in replies]
    assert sorted(r["result"] for r in results) == ["applied"] + ["duplicate"] * 19
    assert {r["status"] for r in results} == {"paid"}
    outbox = metadata.tables["outbox"]
    with engine.connect() as conn:
        succeeded = conn.execute(
            select(func.count()).where(outbox.c.event_type == "payment_succeeded")
        ).scalar_one()
        receipts = conn.execute(
            select(payments.c.receipt_number).where(payments.c.id == payment_id)
        ).scalar_one()
        lines = conn.execute(
            select(journal_lines.c.debit_idr, journal_lines.c.credit_idr).where(
                journal_lines.c.reference == payment_id
            )
        ).all()
        recorded = conn.execute(select(notifications.c.outcome, notifications.c.replays)).all()
    assert succeeded == 1
    assert receipts.endswith("-000001")  # no receipt number was drawn by a losing duplicate
    assert sorted(lines) == [(0, 75000), (75000, 0)]
    # one notice, stored once: its nineteen concurrent twins only count on its row
    assert [tuple(r) for r in recorded] == [("applied", 19)]
    engine.dispose()


@pytest.fixture
def fake():
    provider = FakeProvider()
    yield provider
    provider.stop()


@pytest.mark.postgres
def test_a_provider_outage_delays_the_charge_never_the_invoice(
    container_factory, amqp_uri, vhost, pg_url_factory, monkeypatch, fake
):
    """Issue 16, item 2, over the broker: while Midtrans is down the ticket_completed is handled
    once (not retried), the invoice shows "preparing"; the replicas' own timers retry the charge,
    and when the provider is back it is charged once, for both replicas."""
    fake.down = True
    monkeypatch.setenv("MIDTRANS_SERVER_KEY", fake_provider.MIDTRANS_KEY)
    url = pg_url_factory("mpp_payment")
    replicas = [
        start_payment(
            container_factory,
            amqp_uri,
            url,
            PAYMENT_PROVIDER="midtrans",
            MIDTRANS_BASE_URL=fake.url,
            PROVIDER_HTTP_RETRIES=0,
            CHARGE_SWEEP_SECONDS=0.2,
        )
        for _ in range(2)
    ]
    engine = create_engine(url)
    ticket_id = str(uuid.uuid4())
    publish(amqp_uri, ticket_completed(ticket_id, "svc-unknown", fee=75000))

    def attempt():
        with engine.connect() as conn:
            return (
                conn.execute(
                    select(charge_attempts)
                    .join(payments, payments.c.id == charge_attempts.c.payment_id)
                    .where(payments.c.ticket_id == ticket_id)
                )
                .mappings()
                .first()
            )

    wait_until(lambda: (a := attempt()) and a["tries"] >= 2, message="charge retried")
    wait_until(
        lambda: queue_info(vhost, HANDLER_QUEUE).get("messages") == 0,
        timeout=30,
        interval=0.5,
        message="ticket_completed handled, not waiting for a retry",
    )
    with ClusterRpcProxy(replicas[0].config) as cluster:
        view = cluster.payment.get_ticket_payment(ticket_id)
        assert view["status"] == "pending" and view["charge_status"] == "preparing"
        fake.down = False
        ready = wait_until(
            lambda: (
                (v := cluster.payment.get_ticket_payment(ticket_id))["charge_status"] == "ready"
                and v
            ),
            message="charged once the provider is back",
        )
    assert ready["qris"]["payload"] and attempt()["status"] == "live"
    assert fake.charges == 1 and len(fake.midtrans) == 1
    engine.dispose()

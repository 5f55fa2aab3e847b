"""One real payment container with its real database on a fresh vhost, driven through its entry
points; the queue service is replaced by the events it would send."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest
from nameko.testing.services import entrypoint_hook
from sqlalchemy import create_engine, select

from mpp_chassis.migrate import upgrade
from mpp_contracts.envelope import make_envelope, read_envelope
from mpp_payment.domain import signatures
from tests.support import fake_provider
from tests.support.fake_provider import FakeProvider
from tests.support.mall import free_port

SECRET = "interface-simulator-secret"


def envelope(event_type: str, payload: dict, source: str = "queue") -> dict:
    return read_envelope(make_envelope(event_type, payload, source=source, mall="mpp-test"))


def completed_payload(ticket_id: str, agency_id: str, fee: int = 50000) -> dict:
    now = datetime.now(UTC)
    return {
        "ticket_id": ticket_id,
        "journey_id": ticket_id,
        "number": "P-001",
        "agency_id": agency_id,
        "service_id": f"svc-{agency_id}",
        "service_code": "PASPOR",
        "issued_at": now,
        "counter_id": "counter-1",
        "officer_id": "officer-1",
        "fee_idr": fee,
        "called_at": now,
        "started_at": now,
        "completed_at": now,
        "waiting_seconds": 60,
        "serving_seconds": 120,
    }


class Payment:
    def __init__(self, container, url: str) -> None:
        self.container = container
        self.db = create_engine(url)

    def call(self, entrypoint: str, *args):
        with entrypoint_hook(self.container, entrypoint) as hook:
            return hook(*args)

    def invoice(self, agency_id: str = "agency-1", fee: int = 50000) -> dict:
        ticket_id = str(uuid.uuid4())
        self.call(
            "handle_ticket_completed",
            [envelope("ticket_completed", completed_payload(ticket_id, agency_id, fee))],
        )
        return self.call("get_ticket_payment", ticket_id)

    def notify(self, payment_id: str, status: str = "paid", amount: int = 50000, secret=SECRET):
        """The simulated provider's notification; for "paid", its book first records the money
        (what ``simulate_payment`` does before it sends the webhook)."""
        if status == "paid" and amount == 50000:
            from sqlalchemy import update

            from mpp_payment.adapters.tables import payments, simulator_book

            with self.db.begin() as conn:
                attempt = conn.execute(
                    select(payments.c.method_attempt).where(payments.c.id == payment_id)
                ).scalar_one()
                conn.execute(
                    update(simulator_book)
                    .where(simulator_book.c.order_id == f"{payment_id}-{attempt}")
                    .values(status="paid")
                )
        body = json.dumps(
            {"payment_id": payment_id, "status": status, "amount_idr": amount, "provider_ref": "S1"}
        )
        signature = signatures.simulator_signature(body.encode(), secret)
        return self.call(
            "handle_notification", "simulator", {"x-simulator-signature": signature}, body
        )

    def events(self, event_type: str, payment_id: str | None = None) -> list[dict]:
        from mpp_payment.adapters.tables import metadata

        outbox = metadata.tables["outbox"]
        with self.db.connect() as conn:
            rows = conn.execute(
                select(outbox.c.body).where(outbox.c.event_type == event_type)
            ).all()
        found = [json.loads(r.body) for r in rows]
        return [e for e in found if payment_id is None or e["payload"]["payment_id"] == payment_id]


@pytest.fixture
def payment_factory(container_factory, amqp_uri, tmp_path):
    """A payment container on ``url`` (SQLite in tmp_path by default) with ``config`` changes,
    e.g. ``PAYMENT_PROVIDER`` and a provider's base URL."""
    from mpp_payment.service import PaymentService

    handles: list[Payment] = []

    def make(url: str | None = None, **changes) -> Payment:
        url = url or f"sqlite:///{tmp_path}/payment.db"
        upgrade("payment", url)
        config = {
            "AMQP_URI": amqp_uri,
            "DB_URL": url,
            "WEB_SERVER_ADDRESS": f"127.0.0.1:{free_port()}",
            "MALL_ID": "mpp-test",
            "MALL_TIMEZONE": "Asia/Jakarta",
            "SIMULATOR_SECRET": SECRET,
            "OUTBOX_POLL_SECONDS": 0.2,
            "EXPIRY_SWEEP_SECONDS": 3600,
            **changes,
        }
        container = container_factory(PaymentService, config)
        container.start()
        handles.append(Payment(container, url))
        return handles[-1]

    yield make
    for handle in handles:
        handle.db.dispose()


@pytest.fixture
def payment(payment_factory):
    return payment_factory()


@pytest.fixture
def fake():
    provider = FakeProvider()
    yield provider
    provider.stop()


@pytest.fixture
def provider_service(payment_factory, db_url_factory, fake, monkeypatch):
    """``make(name, **settings)``: a payment service whose PAYMENT_PROVIDER is ``name``, its API
    at the fake provider, with no HTTP retries; ``settings`` adds the test file's own."""
    monkeypatch.setenv("MIDTRANS_SERVER_KEY", fake_provider.MIDTRANS_KEY)
    monkeypatch.setenv("XENDIT_SECRET_KEY", fake_provider.XENDIT_KEY)
    monkeypatch.setenv("XENDIT_CALLBACK_TOKEN", fake_provider.XENDIT_TOKEN)

    def make(name: str, **settings):
        return payment_factory(
            db_url_factory("payment"),
            PAYMENT_PROVIDER=name,
            MIDTRANS_BASE_URL=fake.url,
            XENDIT_BASE_URL=fake.url,
            PROVIDER_HTTP_RETRIES=0,
            PROVIDER_HTTP_TIMEOUT=5,
            **settings,
        )

    return make

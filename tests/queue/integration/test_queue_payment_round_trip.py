"""Over real RabbitMQ, with the real payment service as the consumer: the queue's events leave
through its outbox relay, the payment service decides from them, and its answer comes back to
the queue. A paid service's completed ticket gets an invoice at the fee the queue published,
and the ticket shows that invoice. The payment service's verdict per service version comes
back too (``payment_terms_set``), and a free service's completion is then routed past it as
``ticket_completed.free``: no verdict per ticket, no invoice (on SQLite and PostgreSQL).
"""

from __future__ import annotations

import json

import pytest
from kombu import Connection, Exchange, Queue
from nameko.testing.services import entrypoint_hook
from sqlalchemy import create_engine, select

from mpp_chassis.migrate import upgrade
from mpp_contracts.errors import NotFound
from mpp_payment.adapters.tables import metadata as payment_metadata
from mpp_queue.adapters.tables import metadata as queue_metadata
from tests.queue.usecases.conftest import VALID_NIK
from tests.support.infra import wait_until
from tests.support.mall import free_port

pytestmark = pytest.mark.integration


@pytest.fixture
def floor(container_factory, amqp_uri, db_url_factory):
    """The queue and payment containers on one vhost, each with its own database; calls go to
    the queue's entry points, ``floor.payment(...)`` to the payment's."""
    from mpp_payment.service import PaymentService
    from mpp_queue.service import QueueService

    common = {"AMQP_URI": amqp_uri, "MALL_ID": "mpp-test", "OUTBOX_POLL_SECONDS": 0.2}
    containers = {}
    engines = {}
    for name, cls, extra in (
        ("queue", QueueService, {"NIK_HASH_KEY": "integration-key"}),
        ("payment", PaymentService, {"SIMULATOR_SECRET": "integration-secret"}),
    ):
        url = db_url_factory(name)
        upgrade(name, url)
        engines[name] = create_engine(url)
        config = {**common, "DB_URL": url, "WEB_SERVER_ADDRESS": f"127.0.0.1:{free_port()}"}
        containers[name] = container_factory(cls, {**config, **extra})
    for container in containers.values():
        container.start()  # both bind their event queues before the queue publishes

    def hook(service: str, entrypoint: str, *args):
        with entrypoint_hook(containers[service], entrypoint) as call:
            return call(*args)

    def queue(entrypoint: str, *args):
        return hook("queue", entrypoint, *args)

    def payment_events(event_type: str) -> list[str]:
        """The ticket ids of the payment service's outbox events of ``event_type``."""
        outbox = payment_metadata.tables["outbox"]
        with engines["payment"].connect() as conn:
            bodies = conn.execute(
                select(outbox.c.body).where(outbox.c.event_type == event_type)
            ).scalars()
            return [json.loads(body)["payload"]["ticket_id"] for body in bodies]

    def terms(service_id: str) -> tuple | None:
        """The payment service's terms the queue keeps for a service: (version, required)."""
        services = queue_metadata.tables["services"]
        with engines["queue"].connect() as conn:
            return conn.execute(
                select(services.c.payment_terms_version, services.c.payment_required).where(
                    services.c.id == service_id
                )
            ).one_or_none()

    queue.payment = lambda entrypoint, *args: hook("payment", entrypoint, *args)
    queue.payment_events = payment_events
    queue.terms = lambda service_id: tuple(terms(service_id) or ())
    queue.amqp_uri = amqp_uri
    yield queue
    for engine in engines.values():
        engine.dispose()


def serve(queue, counter: dict, officer: dict) -> dict:
    """Call the next citizen at ``counter``, serve them, complete the ticket."""
    called = queue("call_next", counter["id"], officer)
    queue("ticket_action", called["id"], "start", None, officer)
    return queue("ticket_action", called["id"], "complete", None, officer)


def test_a_completed_paid_ticket_gets_its_invoice_and_the_queue_learns_of_it(floor):
    queue = floor
    agency = queue("register_agency", {"code": "IMIGRASI", "name": "Kantor Imigrasi"})
    paid = {"code": "PASPOR", "name": "Paspor", "fee_idr": 350000, "sla_minutes": 60}
    passport = queue("plug_service", agency["id"], {**paid, "prefix": "P"})
    free = {"code": "INFO", "name": "Informasi", "fee_idr": 0, "sla_minutes": 30}
    info = queue("plug_service", agency["id"], {**free, "prefix": "I"})
    counter = queue(
        "add_counter", agency["id"], {"name": "1", "service_ids": [passport["id"], info["id"]]}
    )
    officer = {"role": "officer", "agency_id": agency["id"], "key_id": "officer-key"}
    queue("take_ticket", {"service_id": passport["id"], "nik": VALID_NIK})
    queue("take_ticket", {"service_id": info["id"]})

    done = serve(queue, counter, officer)
    assert done["status"] == "done"

    def invoice_known_to_the_queue() -> dict | None:
        return queue("get_ticket", done["id"], None, officer).get("payment")

    link = wait_until(invoice_known_to_the_queue, timeout=30, message="payment_requested back")
    invoice = queue.payment("get_ticket_payment", done["id"])
    assert link == {
        "id": invoice["id"],
        "status": "pending",
        "href": f"/v1/payments/{invoice['id']}",
    }
    assert invoice["amount_idr"] == 350000  # the fee the queue published
    assert invoice["agency_id"] == agency["id"]

    # the payment service's verdict per service version reached the queue (payment_terms_set)
    wait_until(
        lambda: queue.terms(info["id"]) == (1, False) and queue.terms(passport["id"]) == (1, True),
        timeout=30,
        message="payment's terms at the queue",
    )
    with Connection(queue.amqp_uri) as conn:  # where the rating service takes free completions
        free_completions = Queue(
            "test-free-completions",
            exchange=Exchange("queue.events", type="topic", durable=True),
            routing_key="ticket_completed.free",
            exclusive=True,
        )(conn.channel())
        free_completions.declare()
        free_done = serve(queue, counter, officer)
        assert free_done["service_id"] == info["id"]
        routed = wait_until(free_completions.get, timeout=30, message="a free completion")
    assert json.loads(routed.body)["payload"]["ticket_id"] == free_done["id"]
    assert json.loads(routed.body)["payload"]["payment_required"] is False
    # routed past the payment service: no verdict, no invoice (its queue binds ticket_completed)
    assert free_done["id"] not in queue.payment_events("payment_not_required")
    with pytest.raises(NotFound):
        queue.payment("get_ticket_payment", free_done["id"])

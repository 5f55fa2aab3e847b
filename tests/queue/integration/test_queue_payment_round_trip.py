"""Over real RabbitMQ, with the real payment service as the consumer: the queue's events leave
through its outbox relay, the payment service decides from them, and its answer comes back to
the queue. A paid service's completed ticket gets an invoice at the fee the queue published,
and the ticket shows that invoice; a free service's ticket gets the verdict that nothing is
owed, not an invoice (on SQLite and PostgreSQL).
"""

from __future__ import annotations

import json

import pytest
from nameko.testing.services import entrypoint_hook
from sqlalchemy import create_engine, select

from mpp_chassis.migrate import upgrade
from mpp_contracts.errors import NotFound
from mpp_payment.adapters.tables import metadata as payment_metadata
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

    queue.payment = lambda entrypoint, *args: hook("payment", entrypoint, *args)
    queue.payment_events = payment_events
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

    free_done = serve(queue, counter, officer)
    assert free_done["service_id"] == info["id"]

    def verdict_for_the_free_ticket() -> bool:
        return free_done["id"] in queue.payment_events("payment_not_required")

    wait_until(verdict_for_the_free_ticket, timeout=30, message="payment_not_required")
    with pytest.raises(NotFound):
        queue.payment("get_ticket_payment", free_done["id"])

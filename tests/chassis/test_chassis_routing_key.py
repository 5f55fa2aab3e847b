"""An event stored with a routing key apart from its type is published with that key; a handler
binds its queue (named for the type, as ever) to the key it asks for, so a handler bound to the
type alone never receives the events routed apart, and one bound to ``<type>.#`` receives all
(issue 20: ``ticket_completed.free`` skips the payment service)."""

from __future__ import annotations

from urllib.parse import quote

import pytest
import requests
from nameko.testing.services import dummy, entrypoint_hook
from sqlalchemy import create_engine, select

from mpp_chassis.batching import batch_event_handler
from mpp_chassis.db import Database
from mpp_chassis.messaging import event_handler
from mpp_chassis.migrate import upgrade
from mpp_queue.adapters.tables import metadata as queue_metadata
from tests.support import infra
from tests.support.infra import wait_until

pytestmark = pytest.mark.integration

outbox = queue_metadata.tables["outbox"]
EXACT: list[str] = []
WIDE: list[str] = []


class Producer:
    name = "queue"
    uow = Database(queue_metadata)

    @dummy
    def announce(self, code: str, routing_key: str | None = None) -> None:
        payload = {"agency_id": code, "code": code, "name": code}
        self.uow.add_event("agency_registered", payload, routing_key=routing_key)
        self.uow.commit()


class Exact:
    """Bound to the type: the events published with the type itself only."""

    name = "exact"

    @event_handler("queue", "agency_registered")
    def handle_agency_registered(self, event: dict) -> None:
        EXACT.append(event["payload"]["code"])


class Wide:
    """A batch handler bound to every routing of the type."""

    name = "wide"

    @batch_event_handler("queue", "agency_registered", routing_key="agency_registered.#")
    def handle_agency_registered(self, events: list[dict]) -> None:
        WIDE.extend(event["payload"]["code"] for event in events)


class WideBefore:
    """``Wide`` as deployed before it asked for a routing key: same service, same queue."""

    name = "wide"

    @batch_event_handler("queue", "agency_registered")
    def handle_agency_registered(self, events: list[dict]) -> None:
        WIDE.extend(event["payload"]["code"] for event in events)


WIDE_QUEUE = "evt-queue-agency_registered--wide.handle_agency_registered"


def binding_keys(vhost: str, queue: str) -> set[str]:
    response = requests.get(
        f"{infra.RABBIT_API}/queues/{quote(vhost, safe='')}/{quote(queue, safe='')}/bindings",
        timeout=5,
    )
    response.raise_for_status()
    return {b["routing_key"] for b in response.json() if b["source"] == "queue.events"}


def test_a_routing_key_reaches_the_handlers_bound_to_it_only(
    container_factory, amqp_uri, vhost, tmp_path
):
    EXACT.clear()
    WIDE.clear()
    url = f"sqlite:///{tmp_path}/queue.db"
    upgrade("queue", url)
    for service in (Exact, Wide):
        container_factory(service, {"AMQP_URI": amqp_uri}).start()
    producer = container_factory(
        Producer, {"AMQP_URI": amqp_uri, "DB_URL": url, "OUTBOX_POLL_SECONDS": 0.2}
    )
    producer.start()
    with entrypoint_hook(producer, "announce") as announce:
        announce("PLAIN")
        announce("APART", routing_key="agency_registered.free")
        announce("LAST")

    wait_until(lambda: sorted(WIDE) == ["APART", "LAST", "PLAIN"], message="wide got all three")
    wait_until(lambda: sorted(EXACT) == ["LAST", "PLAIN"], message="exact got the plain ones")
    assert "APART" not in EXACT
    engine = create_engine(url)

    def stored():
        with engine.connect() as conn:
            return conn.execute(select(outbox.c.routing_key, outbox.c.sent_at)).all()

    # marked sent a moment after delivery (the fast path marks several rounds together)
    wait_until(lambda: all(r.sent_at is not None for r in stored()), message="marked sent")
    rows = stored()
    engine.dispose()
    assert sorted((r.routing_key or "-") for r in rows) == ["-", "-", "agency_registered.free"]
    assert binding_keys(vhost, WIDE_QUEUE) == {"agency_registered.#"}


def test_a_deployed_queue_keeps_its_name_and_gains_the_binding(container_factory, amqp_uri, vhost):
    before = container_factory(WideBefore, {"AMQP_URI": amqp_uri})
    before.start()
    assert binding_keys(vhost, WIDE_QUEUE) == {"agency_registered"}
    before.stop()
    container_factory(Wide, {"AMQP_URI": amqp_uri}).start()
    assert binding_keys(vhost, WIDE_QUEUE) == {"agency_registered", "agency_registered.#"}
    assert infra.queue_info(vhost, WIDE_QUEUE)["arguments"]["x-queue-type"] == "quorum"


@pytest.mark.parametrize(
    ("service", "before"), [("queue", "0009"), ("payment", "0008"), ("rating", "0006")]
)
def test_the_migration_gives_every_outbox_a_routing_key_and_undoes_it(
    service, before, db_url_factory
):
    from alembic import command
    from sqlalchemy import inspect, text

    from mpp_chassis.migrate import alembic_config

    url = db_url_factory(service)
    config = alembic_config(service, url)
    command.upgrade(config, before)
    engine = create_engine(url)
    with engine.begin() as conn:  # an event stored by the release before
        conn.execute(
            text(
                "INSERT INTO outbox (event_id, event_type, source, body, created_at, attempts) "
                "VALUES ('e-1', 'agency_registered', :s, '{}', CURRENT_TIMESTAMP, 0)"
            ),
            {"s": service},
        )
    command.upgrade(config, "head")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT routing_key FROM outbox")).all() == [(None,)]
    if service == "queue":
        columns = {c["name"] for c in inspect(engine).get_columns("services")}
        assert {"payment_terms_version", "payment_required"} <= columns
    command.downgrade(config, before)
    assert "routing_key" not in {c["name"] for c in inspect(engine).get_columns("outbox")}
    command.upgrade(config, "head")
    engine.dispose()

"""The outbox relay's publisher: one batch, one wait for the broker's acknowledgements; within the
batch, the events no queue takes are told apart from the ones delivered; the confirmed ones are
marked sent with one statement."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime

import pytest
from kombu import Connection, Exchange, Queue
from sqlalchemy import create_engine, event, func, insert, select

from mpp_chassis.migrate import upgrade
from mpp_chassis.outbox import BatchPublisher, OutboxRelay
from mpp_chassis.publisher import Outgoing
from mpp_contracts.envelope import make_envelope
from mpp_queue.adapters.tables import metadata as queue_metadata

pytestmark = pytest.mark.integration


def envelope(code: str) -> dict:
    return make_envelope(
        "agency_registered",
        {"agency_id": code, "code": code, "name": code},
        source="queue",
        mall="mpp-test",
    )


def outgoing(envelope: dict) -> Outgoing:
    """An envelope as the outbox stores it (its JSON) and the relay publishes it."""
    return Outgoing(envelope["id"], envelope["correlation_id"], json.dumps(envelope))


def test_a_batch_is_confirmed_and_its_unroutable_events_are_named(amqp_uri):
    exchange = Exchange("queue.events", type="topic", durable=True)
    with Connection(amqp_uri) as conn:
        bound = Queue("batch-listener", exchange, routing_key="agency_registered")
        bound(conn.channel()).declare()
    delivered = [envelope("A"), envelope("B")]
    nobody = envelope("C")
    publisher = BatchPublisher(amqp_uri)
    try:
        confirmed, returned = publisher.publish_batch(
            [
                ("queue", "agency_registered", outgoing(delivered[0])),
                ("queue", "nobody_listens", outgoing(nobody)),
                ("queue", "agency_registered", outgoing(delivered[1])),
            ]
        )
        assert confirmed == {e["id"] for e in delivered}
        assert returned == {nobody["id"]}
        # the channel stays usable: the next batch is confirmed on it too
        again = envelope("D")
        assert publisher.publish_batch([("queue", "agency_registered", outgoing(again))]) == (
            {again["id"]},
            set(),
        )
    finally:
        publisher.close()

    with Connection(amqp_uri) as conn:
        queue = bound(conn.channel())
        messages = []
        while (message := queue.get(no_ack=True)) is not None:
            messages.append(message)
    assert [m.decode()["id"] for m in messages] == [e["id"] for e in (*delivered, again)]
    first = messages[0]
    assert first.content_type == "application/json"
    assert first.properties["delivery_mode"] == 2  # persistent
    assert first.headers["nameko.correlation_id"] == delivered[0]["correlation_id"]


@pytest.mark.parametrize("count", [1, 5])
def test_the_relay_marks_a_published_batch_sent_with_one_statement(amqp_uri, tmp_path, count):
    """Issue 20 item 3 asked the relay to publish *and mark* in batches: a round's confirmed
    events are marked sent by one ``UPDATE … WHERE seq IN (…)``, whatever their number."""
    url = f"sqlite:///{tmp_path}/relay.db"
    upgrade("queue", url)
    engine = create_engine(url)
    outbox = queue_metadata.tables["outbox"]
    exchange = Exchange("queue.events", type="topic", durable=True)
    with Connection(amqp_uri) as conn:
        Queue("relay-listener", exchange, routing_key="agency_registered")(conn.channel()).declare()
    events = [envelope(f"R{n}") for n in range(count)]
    with engine.begin() as conn:
        for body in events:
            conn.execute(
                insert(outbox).values(
                    event_id=body["id"],
                    event_type="agency_registered",
                    source="queue",
                    body=json.dumps(body),
                    correlation_id=body["correlation_id"],
                    created_at=datetime.now(UTC),
                    attempts=0,
                )
            )
    updates: list[str] = []

    @event.listens_for(engine, "before_cursor_execute")
    def record(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("UPDATE"):
            updates.append(statement)

    relay = OutboxRelay(engine=engine, outbox=outbox, amqp_uri=amqp_uri, wakeup=threading.Event())
    try:
        assert relay.publish_pending() == count
    finally:
        relay.stop()
    assert len(updates) == 1, updates
    with engine.connect() as conn:
        unsent = conn.execute(select(func.count()).where(outbox.c.sent_at.is_(None))).scalar()
    assert unsent == 0
    engine.dispose()


def test_the_relay_sends_each_envelope_as_stored(amqp_uri, tmp_path):
    """The relay read each stored envelope back (``json.loads``) and dumped it again to publish
    it; it now sends the stored JSON as it is, with the id and correlation id of its row (a row
    stored without the correlation id in its column, by an older release, reads it from the
    envelope)."""
    url = f"sqlite:///{tmp_path}/relay.db"
    upgrade("queue", url)
    engine = create_engine(url)
    outbox = queue_metadata.tables["outbox"]
    exchange = Exchange("queue.events", type="topic", durable=True)
    listener = Queue("as-stored-listener", exchange, routing_key="agency_registered")
    with Connection(amqp_uri) as conn:
        listener(conn.channel()).declare()
    first, older = envelope("S1"), envelope("S2")
    stored = {e["id"]: json.dumps(e, indent=1, sort_keys=True) for e in (first, older)}
    with engine.begin() as conn:
        for body, correlation in ((first, first["correlation_id"]), (older, None)):
            conn.execute(
                insert(outbox).values(
                    event_id=body["id"],
                    event_type="agency_registered",
                    source="queue",
                    body=stored[body["id"]],
                    correlation_id=correlation,
                    created_at=datetime.now(UTC),
                    attempts=0,
                )
            )
    relay = OutboxRelay(engine=engine, outbox=outbox, amqp_uri=amqp_uri, wakeup=threading.Event())
    try:
        assert relay.publish_pending() == 2
    finally:
        relay.stop()
    engine.dispose()
    with Connection(amqp_uri) as conn:
        queue = listener(conn.channel())
        messages = []
        while (message := queue.get(no_ack=True)) is not None:
            messages.append(message)
    bodies = [m.body if isinstance(m.body, str) else m.body.decode() for m in messages]
    assert bodies == [stored[first["id"]], stored[older["id"]]]
    assert [m.headers["nameko.correlation_id"] for m in messages] == [
        first["correlation_id"],
        older["correlation_id"],
    ]
    assert [m.properties["message_id"] for m in messages] == [first["id"], older["id"]]

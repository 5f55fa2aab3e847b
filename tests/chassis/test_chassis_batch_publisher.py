"""The outbox relay's publisher: one batch, one wait for the broker's acknowledgements; within the
batch, the events no queue takes are told apart from the ones delivered."""

from __future__ import annotations

import pytest
from kombu import Connection, Exchange, Queue

from mpp_chassis.outbox import BatchPublisher
from mpp_contracts.envelope import make_envelope

pytestmark = pytest.mark.integration


def envelope(code: str) -> dict:
    return make_envelope(
        "agency_registered",
        {"agency_id": code, "code": code, "name": code},
        source="queue",
        mall="mpp-test",
    )


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
                ("queue", "agency_registered", delivered[0]),
                ("queue", "nobody_listens", nobody),
                ("queue", "agency_registered", delivered[1]),
            ]
        )
        assert confirmed == {e["id"] for e in delivered}
        assert returned == {nobody["id"]}
        # the channel stays usable: the next batch is confirmed on it too
        again = envelope("D")
        assert publisher.publish_batch([("queue", "agency_registered", again)]) == (
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

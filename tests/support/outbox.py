"""The outbox tests' listener: a queue bound to ``agency_registered`` of the queue service, and
what it received; the rows of the outbox not marked sent."""

from __future__ import annotations

import json

from kombu import Connection, Queue
from sqlalchemy import func, select

from mpp_chassis.engine import make_engine
from mpp_chassis.publisher import event_exchange
from mpp_queue.adapters.tables import metadata as queue_metadata

outbox = queue_metadata.tables["outbox"]
LISTENER = "fast-path-listener"


def listen(amqp_uri: str) -> None:
    with Connection(amqp_uri) as conn:
        Queue(LISTENER, event_exchange("queue"), routing_key="agency_registered")(
            conn.channel()
        ).declare()


def received(amqp_uri: str) -> list[str]:
    """The codes of the events delivered to the listener's queue so far, in order (taken)."""
    codes = []
    with Connection(amqp_uri) as conn:
        queue = Queue(LISTENER)(conn.channel())
        while (message := queue.get(no_ack=True)) is not None:
            codes.append(json.loads(message.body)["payload"]["code"])
    return codes


def unsent(url: str) -> int:
    """Rows not marked sent, read on an engine of the test's own (not one being recorded)."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(
                select(func.count()).select_from(outbox).where(outbox.c.sent_at.is_(None))
            ).scalar_one()
    finally:
        engine.dispose()

"""Publishing events to RabbitMQ as nameko's ``EventDispatcher`` does, in confirmed batches: the
outbox relay's half that talks to the broker (:mod:`mpp_chassis.outbox`)."""

from __future__ import annotations

import json
import time
from typing import NamedTuple

import amqp
from kombu import Connection, Exchange

CONFIRM_TIMEOUT = 10.0


def event_exchange(source: str) -> Exchange:
    """The exchange nameko's event handlers bind to: ``<source>.events``, topic, durable."""
    return Exchange(f"{source}.events", type="topic", durable=True, auto_delete=False)


class Outgoing(NamedTuple):
    """An event to publish: its id, its correlation id and its envelope as the outbox stores it
    (JSON), sent as it is: the relay neither parses nor dumps it again."""

    event_id: str
    correlation_id: str | None
    body: str

    @classmethod
    def of(cls, row) -> Outgoing:
        """An outbox row (``event_id``, ``correlation_id``, ``body``) as it is sent; a row
        stored without its correlation id in the column reads it from its envelope."""
        correlation = row.correlation_id
        if correlation is None:
            correlation = json.loads(row.body).get("correlation_id")
        return cls(row.event_id, correlation, row.body)


class BatchPublisher:
    """Publishes a batch of events on one channel in confirm mode, ``mandatory``, and waits for
    the broker's acknowledgements once per batch instead of once per event.

    The broker returns an unroutable mandatory message (``basic.return``) before it acknowledges
    it, so once every message of the batch is acknowledged the returned ones are known. Messages
    are what nameko's ``EventDispatcher`` sends: persistent JSON with the correlation id in the
    ``nameko.correlation_id`` header, so nameko's event handlers consume them unchanged. Any
    error drops the connection; the relay's next round opens a new one and republishes whatever
    was not confirmed (consumers deduplicate by event id).
    """

    def __init__(self, amqp_uri: str, confirm_timeout: float = CONFIRM_TIMEOUT) -> None:
        self.amqp_uri = amqp_uri
        self.confirm_timeout = confirm_timeout
        self._connection: Connection | None = None
        self._channel = None
        self._declared: set[str] = set()
        self._next_tag = 1
        self._acked: set[int] = set()
        self._acked_upto = 0
        self._nacked: set[int] = set()
        self._returned: set[str] = set()

    def _open(self):
        if self._channel is None:
            connection = Connection(self.amqp_uri, heartbeat=0)
            connection.connect()
            channel = connection.connection.channel()
            channel.confirm_select()
            channel.events["basic_ack"].add(self._on_ack)
            channel.events["basic_nack"].add(self._on_nack)
            channel.events["basic_return"].add(self._on_return)
            self._connection, self._channel = connection, channel
            self._declared.clear()
            self._next_tag, self._acked_upto = 1, 0
            self._acked.clear()
            self._nacked.clear()
        return self._channel

    def close(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None:
            try:
                connection.close()
            except Exception:  # already gone
                pass

    def _on_ack(self, tag: int, multiple: bool) -> None:
        if multiple:
            self._acked_upto = max(self._acked_upto, tag)
        else:
            self._acked.add(tag)

    def _on_nack(self, tag: int, multiple: bool) -> None:
        if multiple:
            self._nacked.update(
                t for t in range(self._acked_upto + 1, tag + 1) if t not in self._acked
            )
            self._acked_upto = max(self._acked_upto, tag)
        else:
            self._nacked.add(tag)

    def _on_return(self, _exc, _exchange, _routing_key, message) -> None:
        self._returned.add(message.properties.get("message_id"))

    def _confirmed(self, tag: int) -> bool:
        return tag <= self._acked_upto or tag in self._acked

    def publish_batch(
        self, messages: list[tuple[str, str, Outgoing]], *, optional: set[str] = frozenset()
    ) -> tuple[set[str], set[str]]:
        """Publish ``(exchange source, routing key, event)`` triples; return the ids the broker
        confirmed and routed, and the ids it returned as unroutable. The events whose ids are
        in ``optional`` are published without ``mandatory``: confirmed, they count as sent
        whether a queue took them or not."""
        try:
            channel = self._open()
            self._returned.clear()
            tags: dict[int, str] = {}
            for source, routing_key, event in messages:
                exchange = event_exchange(source)
                if exchange.name not in self._declared:
                    channel.exchange_declare(
                        exchange.name,
                        exchange.type,
                        durable=exchange.durable,
                        auto_delete=exchange.auto_delete,
                    )
                    self._declared.add(exchange.name)
                channel.basic_publish(
                    amqp.Message(
                        event.body,
                        content_type="application/json",
                        content_encoding="utf-8",
                        delivery_mode=2,
                        message_id=event.event_id,
                        application_headers={"nameko.correlation_id": event.correlation_id},
                    ),
                    exchange=exchange.name,
                    routing_key=routing_key,
                    mandatory=event.event_id not in optional,
                )
                tags[self._next_tag] = event.event_id
                self._next_tag += 1
            deadline = time.monotonic() + self.confirm_timeout
            while not all(self._confirmed(tag) for tag in tags):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError("the broker did not confirm the batch in time")
                self._connection.drain_events(timeout=remaining)
        except Exception:
            self.close()
            raise
        returned = {tags[t] for t in tags if tags[t] in self._returned}
        failed = {tags[t] for t in tags if t in self._nacked} | returned
        self._acked.difference_update(tags)
        self._nacked.difference_update(tags)
        return {i for i in tags.values() if i not in failed}, returned

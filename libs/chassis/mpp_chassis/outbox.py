"""The outbox relay: publishes stored events with publisher confirms, then marks them sent.

An event is marked sent only after the broker confirmed it *and* routed it to at least one queue
(``mandatory``): a broker that is down, a connection that drops, or a consumer whose queue
does not exist yet only delays publication. A relay that dies between the confirm and the
update publishes the event again on restart; consumers deduplicate by event id, so
at-least-once is enough. On PostgreSQL rows are claimed with ``FOR UPDATE SKIP LOCKED``, so
replicas never publish a row twice at the same time.

Only the types a service of the mall consumes (``must_route``: ``mpp_contracts.events.CONSUMED``
for the services) are published ``mandatory``. Every other type (``ticket_issued``,
``sla_breached``, …) is a fact for whoever listens — a dashboard, a national view — published once,
confirmed and marked sent: a queue bound to it receives it, and with none bound the broker drops it
(nothing parks, nothing waits for a consumer that is not part of the mall).

An event of a consumed type that no queue takes for about half a minute (its consumer not
deployed yet) is *parked*: kept in the outbox with ``last_error = 'unroutable'`` — never pruned,
however old, until it is republished and sent — counted in ``mpp_outbox_parked_total`` and,
while it waits, in the ``mpp_outbox_parked_events`` gauge (alert MppOutboxParked). Once a type
has had no queue for that long, each new event of it is still published once (the first one a
new consumer's queue takes ends the state) and parked at once if it comes back: retrying every
one for half a minute kept thousands of rows in the relay's way on a busy floor. When a consumer
for it is deployed later, send the parked events again:

    python -m mpp_chassis.outbox republish <service> [--type EVENT_TYPE]
"""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import UTC, datetime, timedelta

import amqp
from kombu import Connection, Exchange
from sqlalchemy import (
    MetaData,
    Table,
    bindparam,
    delete,
    func,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.engine import Engine

from mpp_chassis import metrics
from mpp_chassis.engine import make_engine
from mpp_chassis.tables import add_chassis_tables

_log = logging.getLogger(__name__)

BATCH = 200
MAX_BACKOFF_SECONDS = 30.0
RETENTION = timedelta(days=7)
UNROUTABLE = "unroutable"
MAX_UNROUTABLE_ATTEMPTS = 5
UNROUTABLE_PAUSE = 2.0
PARK_AFTER_SECONDS = 30.0  # ≈ the retries' horizon: 2 + 4 + 8 + 16 s


CONFIRM_TIMEOUT = 10.0
_NO_BITMAP_SCAN = text("SET LOCAL enable_bitmapscan = off")


def event_exchange(source: str) -> Exchange:
    """The exchange nameko's event handlers bind to: ``<source>.events``, topic, durable."""
    return Exchange(f"{source}.events", type="topic", durable=True, auto_delete=False)


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
        self, messages: list[tuple[str, str, dict]], *, optional: set[str] = frozenset()
    ) -> tuple[set[str], set[str]]:
        """Publish ``(exchange source, routing key, envelope)`` triples; return the ids the
        broker confirmed and routed, and the ids it returned as unroutable. The envelopes whose
        ids are in ``optional`` are published without ``mandatory``: confirmed, they count as
        sent whether a queue took them or not."""
        try:
            channel = self._open()
            self._returned.clear()
            tags: dict[int, str] = {}
            for source, routing_key, envelope in messages:
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
                        json.dumps(envelope),
                        content_type="application/json",
                        content_encoding="utf-8",
                        delivery_mode=2,
                        message_id=envelope["id"],
                        application_headers={"nameko.correlation_id": envelope["correlation_id"]},
                    ),
                    exchange=exchange.name,
                    routing_key=routing_key,
                    mandatory=envelope["id"] not in optional,
                )
                tags[self._next_tag] = envelope["id"]
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


class OutboxRelay:
    def __init__(
        self,
        *,
        engine: Engine,
        outbox: Table,
        amqp_uri: str,
        wakeup: threading.Event,
        poll_seconds: float = 1.0,
        max_unroutable_attempts: int = MAX_UNROUTABLE_ATTEMPTS,
        park_after_seconds: float = PARK_AFTER_SECONDS,
        must_route: frozenset[str] | None = None,
    ) -> None:
        self.engine = engine
        # the types a consumer must receive (None: every type); the others are facts for
        # whoever listens, sent once (see the module's docstring)
        self.must_route = must_route
        self.outbox = outbox
        self.publisher = BatchPublisher(amqp_uri)
        self.wakeup = wakeup
        self.poll_seconds = poll_seconds
        self.max_unroutable_attempts = max_unroutable_attempts
        self.park_after_seconds = park_after_seconds
        self._running = True
        self.failures = 0  # consecutive failed rounds; 0 while the broker answers
        self._unroutable_until: dict[str, float] = {}
        self._unroutable_since: dict[str, float] = {}  # type -> first return since last routed
        self._backlog_read_at = 0.0
        self._last_prune = datetime.min.replace(tzinfo=UTC)
        # a round's statements, built once: building and cache-keying them per round cost the
        # relay of a busy service more Python than executing them
        c = outbox.c
        self._locking = engine.dialect.name == "postgresql"
        pending = (
            select(c.seq, c.event_type, c.routing_key, c.source, c.body, c.attempts)
            .where(
                c.sent_at.is_(None),
                c.next_attempt_at.is_(None) | (c.next_attempt_at <= bindparam("now")),
            )
            .order_by(c.seq)
            .limit(BATCH)
        )
        self._pending = pending.with_for_update(skip_locked=True) if self._locking else pending
        self._mark_sent = (
            update(outbox)
            .where(c.seq.in_(bindparam("seqs", expanding=True)))
            .values(sent_at=bindparam("sent_at"), attempts=c.attempts + 1, last_error=None)
        )

    def stop(self) -> None:
        self._running = False
        self.publisher.close()

    def run(self) -> None:
        backoff = self.poll_seconds
        while self._running:
            self.wakeup.clear()
            try:
                published = self.publish_pending()
                backoff = self.poll_seconds
                self.failures = 0
            except Exception as exc:  # broker or database away: wait and try again
                self.failures += 1
                _log.warning("outbox relay paused: %s", type(exc).__name__)
                published = 0
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
            if published < BATCH:
                self.wakeup.wait(timeout=backoff)

    def publish_pending(self) -> int:
        """Publish one batch of due events; return how many were confirmed."""
        locking = self._locking
        with self.engine.connect() as conn:
            if locking:
                # read ``ix_outbox_unsent`` by a plain index scan: it marks the entries of rows
                # sent since the last vacuum as dead, so the next round skips them. The bitmap
                # scan the planner prefers for a small backlog never does, and visited every
                # such row version each round (~1 ms a round on a busy floor, vs ~0.02 ms).
                conn.execute(_NO_BITMAP_SCAN)
            rows = conn.execute(self._pending, {"now": datetime.now(UTC)}).all()
            if not locking:
                conn.rollback()  # SQLite: hold no lock while talking to the broker
            sent, unroutable = self._publish(rows)
            if sent:
                conn.execute(self._mark_sent, {"seqs": sent, "sent_at": datetime.now(UTC)})
            by_attempts: dict[tuple[int, bool], list[int]] = {}
            for row in unroutable:  # one UPDATE per attempt count, not one per row
                park = self._long_unroutable(row.event_type)
                by_attempts.setdefault((row.attempts + 1, park), []).append(row.seq)
            for (attempts, park), seqs in by_attempts.items():
                conn.execute(
                    update(self.outbox)
                    .where(self.outbox.c.seq.in_(seqs))
                    .values(**self._after_unroutable(attempts, len(seqs), park=park))
                )
            conn.commit()
        metrics.OUTBOX_PUBLISHED.inc(len(sent))
        self._prune()
        if time.monotonic() - self._backlog_read_at >= 1.0:  # a gauge, not worth a COUNT per batch
            self._backlog_read_at = time.monotonic()
            backlog, parked_now = self.backlog_and_parked()
            metrics.OUTBOX_BACKLOG.set(backlog)
            metrics.OUTBOX_PARKED_NOW.set(parked_now)
        return len(sent)

    def _long_unroutable(self, event_type: str) -> bool:
        since = self._unroutable_since.get(event_type)
        return since is not None and time.monotonic() - since >= self.park_after_seconds

    def _after_unroutable(self, attempts: int, rows: int = 1, *, park: bool = False) -> dict:
        """Retry an event no queue took, with growing delays; after ``max_unroutable_attempts``
        (about half a minute by default), or at once if its type has had no queue for that long
        (``park``), park it: it stays in the outbox, marked ``unroutable``, until
        ``python -m mpp_chassis.outbox republish`` sends it again once a consumer
        exists. Retrying forever would spend the relay on events nobody wants."""
        now = datetime.now(UTC)
        if park or attempts >= self.max_unroutable_attempts:
            metrics.OUTBOX_PARKED.inc(rows)
            return {"attempts": attempts, "sent_at": now, "last_error": UNROUTABLE}
        delay = min(2**attempts, MAX_BACKOFF_SECONDS)
        return {
            "attempts": attempts,
            "next_attempt_at": now + timedelta(seconds=delay),
            "last_error": UNROUTABLE,
        }

    def _publish(self, rows) -> tuple[list[int], list]:
        """Publish rows in one confirmed batch; return the seqs confirmed and routed, and the
        rows no queue took (their types pause: see :meth:`publish_pending`).

        An event type that just came back unroutable is not published again for
        ``UNROUTABLE_PAUSE`` seconds: its rows count an attempt without a round trip (they are
        retried later). A type with no queue for ``park_after_seconds`` is not paused: each of
        its events is published once, so the first one a new consumer's queue takes is delivered
        and ends the state, and the others are parked at once.
        """
        now = time.monotonic()
        due, unroutable = [], []
        for row in rows:
            paused = self._unroutable_until.get(
                row.event_type, 0.0
            ) > now and not self._long_unroutable(row.event_type)
            (unroutable if paused else due).append(row)
        if not due:
            return [], unroutable
        envelopes = [(row, json.loads(row.body)) for row in due]
        must_route = self.must_route
        confirmed, returned = self.publisher.publish_batch(
            [
                (row.source, row.routing_key or row.event_type, envelope)
                for row, envelope in envelopes
            ],
            optional=set()
            if must_route is None
            else {e["id"] for row, e in envelopes if row.event_type not in must_route},
        )
        sent = []
        for row, envelope in envelopes:
            if envelope["id"] in confirmed:
                sent.append(row.seq)
                self._unroutable_until.pop(row.event_type, None)
                if self._unroutable_since.pop(row.event_type, None) is not None:
                    _log.info("a queue takes %s again", row.event_type)
            elif envelope["id"] in returned:
                unroutable.append(row)
                if row.event_type not in self._unroutable_since:  # logged once, not per event
                    _log.info("no queue bound for %s yet", row.event_type)
                    self._unroutable_since[row.event_type] = now
                self._unroutable_until[row.event_type] = now + UNROUTABLE_PAUSE
            # else: refused by the broker (nack): left as it is for the next round
        return sent, unroutable

    def backlog(self) -> int:
        return self.backlog_and_parked()[0]

    def backlog_and_parked(self) -> tuple[int, int]:
        """Events not yet sent, and events parked now (both gauges, in one statement)."""
        c = self.outbox.c
        with self.engine.connect() as conn:
            return tuple(
                conn.execute(
                    select(
                        func.count().filter(c.sent_at.is_(None)),
                        func.count().filter(c.sent_at.is_not(None), c.last_error == UNROUTABLE),
                    ).select_from(self.outbox)
                ).one()
            )

    def _prune(self) -> None:
        now = datetime.now(UTC)
        if now - self._last_prune < timedelta(hours=1):
            return
        self._last_prune = now
        self.prune(now)

    def prune(self, now: datetime) -> int:
        """Delete events sent more than ``RETENTION`` before ``now``. A parked event was never
        delivered: it stays, whatever its age, until it is republished and sent (the
        ``mpp_outbox_parked_events`` gauge and the MppOutboxParked alert show it waiting)."""
        c = self.outbox.c
        with self.engine.begin() as conn:
            return conn.execute(
                delete(self.outbox).where(
                    c.sent_at.is_not(None),
                    c.sent_at < now - RETENTION,
                    c.last_error.is_distinct_from(UNROUTABLE),
                )
            ).rowcount


def parked(
    engine: Engine, outbox: Table, event_type: str | None = None, limit: int = 100
) -> list[dict]:
    """The parked (unroutable) events, oldest first: what ``republish`` would send again."""
    condition = [outbox.c.sent_at.is_not(None), outbox.c.last_error == UNROUTABLE]
    if event_type:
        condition.append(outbox.c.event_type == event_type)
    columns = (outbox.c.event_id, outbox.c.event_type, outbox.c.created_at, outbox.c.sent_at)
    with engine.connect() as conn:
        rows = conn.execute(select(*columns).where(*condition).order_by(outbox.c.seq).limit(limit))
        return [
            {
                "event_id": row.event_id,
                "type": row.event_type,
                "created_at": row.created_at.isoformat(),
                "parked_at": row.sent_at.isoformat(),
            }
            for row in rows
        ]


def republish(engine: Engine, outbox: Table, event_type: str | None = None) -> int:
    """Return parked (unroutable) events to the relay's queue; the relay publishes them again."""
    condition = [outbox.c.sent_at.is_not(None), outbox.c.last_error == UNROUTABLE]
    if event_type:
        condition.append(outbox.c.event_type == event_type)
    with engine.begin() as conn:
        return conn.execute(
            update(outbox)
            .where(*condition)
            .values(sent_at=None, attempts=0, next_attempt_at=None, last_error=None)
        ).rowcount


def open_outbox(service: str) -> tuple[Engine, Table]:
    """An installed service's database (``<SERVICE>_DB_URL``) and its outbox table, whose shape is
    the chassis's own (``add_chassis_tables``): no service package is imported."""
    from mpp_chassis.migrate import databases, default_url

    if service not in databases():
        raise LookupError(f"no database {service!r} installed: {', '.join(databases())}")
    outbox, _ = add_chassis_tables(MetaData())
    engine = make_engine(default_url(service))
    if not inspect(engine).has_table(outbox.name):  # the gateway publishes nothing
        engine.dispose()
        raise LookupError(f"{service} has no outbox: it publishes no events")
    return engine, outbox


def main(argv: list[str] | None = None) -> int:
    import argparse

    from mpp_chassis.migrate import databases

    parser = argparse.ArgumentParser(prog="python -m mpp_chassis.outbox")
    commands = parser.add_subparsers(dest="command", required=True)
    again = commands.add_parser("republish", help="send parked (unroutable) events again")
    listing = commands.add_parser("parked", help="list parked (unroutable) events")
    for command in (again, listing):
        command.add_argument("service", choices=list(databases()))
        command.add_argument("--type", dest="event_type", help="only this event type")
    args = parser.parse_args(argv)
    engine, outbox = open_outbox(args.service)
    if args.command == "parked":
        for row in parked(engine, outbox, args.event_type):
            print(f"{row['event_id']}  {row['type']}  parked {row['parked_at']}")
        return 0
    count = republish(engine, outbox, args.event_type)
    print(f"{count} parked event(s) of {args.service} returned to the outbox relay")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The outbox relay: publishes stored events with publisher confirms, then marks them sent.

An event is marked sent only after the broker confirmed it *and* routed it to at least one queue
(``mandatory``): a broker that is down, a connection that drops, or a consumer whose queue
does not exist yet only delays publication. A relay that dies between the confirm and the
update publishes the event again on restart; consumers deduplicate by event id, so
at-least-once is enough.

The events a process commits are handed to its relay by the unit of work after the commit
(:meth:`OutboxRelay.hand_over`) and published from memory (the *fast path*); the relay marks what
the broker confirmed sent by event id, several rounds' in one statement, at most
``MARK_DELAY_SECONDS`` later. The table is polled every ``poll_seconds`` for the rest: events the
fast path could not publish (broker away, not confirmed, returned) and those whose hand-over was
lost (a crash between commit and publish). The poll leaves alone the rows younger than the
hand-over grace (their own process publishes them) and those this relay holds. On PostgreSQL it
claims rows with ``FOR UPDATE SKIP LOCKED``, so replicas never poll the same row at once.

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

import logging
import threading
import time
from collections import deque
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

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
from mpp_chassis.publisher import BatchPublisher, Outgoing, event_exchange  # noqa: F401 - its old home
from mpp_chassis.tables import PARKED, UNROUTABLE, UNSENT, add_chassis_tables

_log = logging.getLogger(__name__)

BATCH = 200
MAX_BACKOFF_SECONDS = 30.0
RETENTION = timedelta(days=7)
MAX_UNROUTABLE_ATTEMPTS = 5
UNROUTABLE_PAUSE = 2.0
PARK_AFTER_SECONDS = 30.0  # ≈ the retries' horizon: 2 + 4 + 8 + 16 s
MARK_DELAY_SECONDS = 0.2  # the fast path marks what it published at most this late
HANDOVER_GRACE_SECONDS = 3.0  # younger unsent rows are left to their process's fast path


_NO_BITMAP_SCAN = text("SET LOCAL enable_bitmapscan = off")


class Handed(NamedTuple):
    """An event of a transaction this process committed, as the unit of work handed it over."""

    event_id: str
    event_type: str
    routing_key: str | None
    source: str
    body: str
    correlation_id: str | None
    attempts: int = 0


class OutboxRelay:
    """Publishes the outbox: the events this process commits from memory (the fast path), and
    whatever else is unsent by polling the table (see the module's docstring)."""

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
        handover_grace_seconds: float = 0.0,
        mark_delay_seconds: float = MARK_DELAY_SECONDS,
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
        self.handover_grace = timedelta(seconds=handover_grace_seconds)
        self.mark_delay = mark_delay_seconds
        self._running = True
        self.failures = 0  # consecutive failed rounds; 0 while the broker answers
        self.polls = 0  # rounds done that read the table (the fast path's rounds do not)
        self._handed: deque[dict] = deque()  # committed rows handed over by units of work
        self._unmarked: list[str] = []  # event ids the fast path published, not yet marked sent
        self._unmarked_since = 0.0
        self._unroutable_until: dict[str, float] = {}
        self._unroutable_since: dict[str, float] = {}  # type -> first return since last routed
        self._backlog_read_at = 0.0
        self._last_prune = datetime.min.replace(tzinfo=UTC)
        # a round's statements, built once: building and cache-keying them per round cost the
        # relay of a busy service more Python than executing them
        c = outbox.c
        self._locking = engine.dialect.name == "postgresql"
        due = c.next_attempt_at.is_(None)
        if handover_grace_seconds > 0:  # younger rows are the fast path's of their process
            due = due & (c.created_at <= bindparam("handed_before"))
        pending = (
            select(
                c.seq,
                c.event_id,
                c.event_type,
                c.routing_key,
                c.source,
                c.body,
                c.correlation_id,
                c.attempts,
            )
            .where(c.sent_at.is_(None), due | (c.next_attempt_at <= bindparam("now")))
            .order_by(c.seq)
            .limit(BATCH)
        )
        self._pending = pending.with_for_update(skip_locked=True) if self._locking else pending
        self._mark_sent = (
            update(outbox)
            .where(c.seq.in_(bindparam("seqs", expanding=True)))
            .values(sent_at=bindparam("sent_at"), attempts=c.attempts + 1, last_error=None)
        )
        self._mark_handed_sent = (
            update(outbox)
            .where(c.event_id.in_(bindparam("ids", expanding=True)))
            .values(sent_at=bindparam("sent_at"), attempts=c.attempts + 1, last_error=None)
        )
        # the two gauges, each counted by its partial index's own predicate (literal: the
        # planner then knows the index covers it); a parked row is marked sent
        unsent = select(func.count()).select_from(outbox).where(text(UNSENT))
        parked = (
            select(func.count()).select_from(outbox).where(text(PARKED), c.sent_at.is_not(None))
        )
        self._backlog_and_parked = select(unsent.scalar_subquery(), parked.scalar_subquery())

    def hand_over(self, rows: list[dict]) -> None:
        """Give the relay the outbox rows of a transaction that has just committed (called by
        the unit of work, from any thread) and wake it: it publishes them without reading
        them back. Rows lost here (a crash) are still in the table, for the poll."""
        self._handed.extend(rows)
        self.wakeup.set()

    def stop(self) -> None:
        self._running = False
        try:  # what the fast path published is not published again by the next process
            self.mark_sent()
        except Exception:  # the database is away: the next process publishes them again
            _log.warning("outbox relay stopped with events published but not marked sent")
        self.publisher.close()

    def run(self) -> None:
        backoff = self.poll_seconds
        next_poll = 0.0  # at once: what an earlier process left unsent
        while self._running:
            self.wakeup.clear()
            try:
                worked = False
                if self._handed:
                    if self.failures:  # broker or database away: the poll retries them, later
                        self._handed.clear()
                    else:
                        self.publish_handed()
                        worked = True
                if self._marking_due():
                    self.mark_sent()
                if time.monotonic() >= next_poll:
                    self.mark_sent()  # the poll must not find them unsent
                    full = self.publish_pending() >= BATCH
                    next_poll = time.monotonic() + (0.0 if full else self.poll_seconds)
                    worked = True
                if worked:
                    backoff = self.poll_seconds
                    self.failures = 0
            except Exception as exc:  # broker or database away: wait and try again
                self.failures += 1
                _log.warning("outbox relay paused: %s", type(exc).__name__)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
                next_poll = time.monotonic() + backoff
            if self._handed and not self.failures:
                continue
            timeout = next_poll - time.monotonic()
            if self._unmarked and not self.failures:  # failing: marked at the next poll
                timeout = min(timeout, self._unmarked_since + self.mark_delay - time.monotonic())
            if timeout > 0:
                self.wakeup.wait(timeout=timeout)

    def _marking_due(self) -> bool:
        if not self._unmarked or self.failures:  # failing: marked before the next poll
            return False
        waited = time.monotonic() - self._unmarked_since
        return len(self._unmarked) >= BATCH or waited >= self.mark_delay

    def publish_handed(self) -> int:
        """Publish up to a batch of the rows units of work handed over; return how many were
        confirmed. They are marked sent later, several rounds' in one statement
        (:meth:`mark_sent`); those not confirmed are left to the poll."""
        handed, rows = self._handed, []
        while handed and len(rows) < BATCH:
            row = handed.popleft()
            rows.append(
                Handed(
                    row["event_id"],
                    row["event_type"],
                    row["routing_key"],
                    row["source"],
                    row["body"],
                    row["correlation_id"],
                )
            )
        sent, unroutable = self._publish(rows)
        if sent:
            if not self._unmarked:
                self._unmarked_since = time.monotonic()
            self._unmarked.extend(row.event_id for row in sent)
        if unroutable:
            with self.engine.begin() as conn:
                self._record_unroutable(conn, unroutable)
        metrics.OUTBOX_PUBLISHED.inc(len(sent))
        return len(sent)

    def mark_sent(self) -> None:
        """Mark the events the fast path published as sent: one statement for however many
        rounds published since the last one (at most ``mark_delay`` ago), in a transaction of
        its own on the relay's connection. Until then a relay that dies publishes them again
        (at-least-once; consumers deduplicate)."""
        if not self._unmarked:
            return
        ids, self._unmarked = self._unmarked, []
        try:
            with self.engine.begin() as conn:
                conn.execute(self._mark_handed_sent, {"ids": ids, "sent_at": datetime.now(UTC)})
        except Exception:
            self._unmarked = ids + self._unmarked  # kept: the poll does not take them meanwhile
            raise

    def publish_pending(self) -> int:
        """Publish one batch of due events found in the table; return how many were confirmed.

        With a hand-over grace, rows younger than it are left to the fast path of the process
        that committed them, and rows still handed over to this relay are skipped: the poll is
        for what a fast path did not publish (not confirmed, returned, lost in a crash)."""
        locking = self._locking
        now = datetime.now(UTC)
        with self.engine.connect() as conn:
            if locking:
                # read ``ix_outbox_unsent`` by a plain index scan: it marks the entries of rows
                # sent since the last vacuum as dead, so the next round skips them. The bitmap
                # scan the planner prefers for a small backlog never does, and visited every
                # such row version each round (~1 ms a round on a busy floor, vs ~0.02 ms).
                conn.execute(_NO_BITMAP_SCAN)
            params = {"now": now, "handed_before": now - self.handover_grace}
            rows = conn.execute(self._pending, params).all()
            if not locking:
                conn.rollback()  # SQLite: hold no lock while talking to the broker
            if self._handed or self._unmarked:  # the fast path's: published, or about to be
                held = {row["event_id"] for row in self._handed}.union(self._unmarked)
                rows = [row for row in rows if row.event_id not in held]
            sent, unroutable = self._publish(rows)
            if sent:
                conn.execute(
                    self._mark_sent, {"seqs": [r.seq for r in sent], "sent_at": datetime.now(UTC)}
                )
            self._record_unroutable(conn, unroutable)
            conn.commit()
        metrics.OUTBOX_PUBLISHED.inc(len(sent))
        self._prune()
        if time.monotonic() - self._backlog_read_at >= 1.0:  # a gauge, not worth a COUNT per batch
            self._backlog_read_at = time.monotonic()
            backlog, parked_now = self.backlog_and_parked()
            metrics.OUTBOX_BACKLOG.set(backlog)
            metrics.OUTBOX_PARKED_NOW.set(parked_now)
        self.polls += 1
        return len(sent)

    def _record_unroutable(self, conn, rows) -> None:
        """Count an attempt of each event no queue took: one UPDATE per attempt count."""
        by_attempts: dict[tuple[int, bool], list[str]] = {}
        for row in rows:
            park = self._long_unroutable(row.event_type)
            by_attempts.setdefault((row.attempts + 1, park), []).append(row.event_id)
        for (attempts, park), ids in by_attempts.items():
            conn.execute(
                update(self.outbox)
                .where(self.outbox.c.event_id.in_(ids))
                .values(**self._after_unroutable(attempts, len(ids), park=park))
            )

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

    def _publish(self, rows) -> tuple[list, list]:
        """Publish rows in one confirmed batch; return the rows confirmed and routed, and the
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
        must_route = self.must_route
        confirmed, returned = self.publisher.publish_batch(
            [(row.source, row.routing_key or row.event_type, Outgoing.of(row)) for row in due],
            optional=set()
            if must_route is None
            else {row.event_id for row in due if row.event_type not in must_route},
        )
        sent = []
        for row in due:
            if row.event_id in confirmed:
                sent.append(row)
                self._unroutable_until.pop(row.event_type, None)
                if self._unroutable_since.pop(row.event_type, None) is not None:
                    _log.info("a queue takes %s again", row.event_type)
            elif row.event_id in returned:
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
        """Events not yet sent, and events parked now (both gauges, in one statement).

        Each count reads its own partial index (``ix_outbox_unsent``, ``ix_outbox_parked``):
        one ``FILTER`` over the table read every row kept, a week of sent events, every second
        in every process (~20 ms of PostgreSQL a second at 84,000 rows)."""
        with self.engine.connect() as conn:
            return tuple(conn.execute(self._backlog_and_parked).one())

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

"""The outbox relay: publishes stored events with publisher confirms, then marks them sent.

An event is marked sent only after the broker confirmed it *and* routed it to at least one queue
(``mandatory``): a broker that is down, a connection that drops, or a consumer whose queue
does not exist yet only delays publication. A relay that dies between the confirm and the
update publishes the event again on restart; consumers deduplicate by event id, so
at-least-once is enough. On PostgreSQL rows are claimed with ``FOR UPDATE SKIP LOCKED``, so
replicas never publish a row twice at the same time.

An event that no queue takes for about half a minute (no consumer of that type was ever started)
is *parked*: kept in the outbox with ``last_error = 'unroutable'`` and counted in
``mpp_outbox_parked_total``. When a consumer for it is deployed later, send the parked events again:

    python -m mpp_chassis.outbox republish <service> [--type EVENT_TYPE]
"""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import UTC, datetime, timedelta

from kombu import Exchange
from nameko.amqp.publish import Publisher, UndeliverableMessage
from sqlalchemy import Table, delete, func, select, update
from sqlalchemy.engine import Engine

from mpp_chassis import metrics

_log = logging.getLogger(__name__)

BATCH = 200
MAX_BACKOFF_SECONDS = 30.0
RETENTION = timedelta(days=7)
UNROUTABLE = "unroutable"
MAX_UNROUTABLE_ATTEMPTS = 5
UNROUTABLE_PAUSE = 2.0


def event_exchange(source: str) -> Exchange:
    """The exchange nameko's event handlers bind to: ``<source>.events``, topic, durable."""
    return Exchange(f"{source}.events", type="topic", durable=True, auto_delete=False)


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
    ) -> None:
        self.engine = engine
        self.outbox = outbox
        self.publisher = Publisher(
            amqp_uri,
            use_confirms=True,
            mandatory=True,
            retry=True,
            retry_policy={"max_retries": 1, "interval_start": 0, "interval_step": 1},
        )
        self.wakeup = wakeup
        self.poll_seconds = poll_seconds
        self.max_unroutable_attempts = max_unroutable_attempts
        self._running = True
        self.failures = 0  # consecutive failed rounds; 0 while the broker answers
        self._declared: set[str] = set()
        self._unroutable_until: dict[str, float] = {}
        self._backlog_read_at = 0.0
        self._last_prune = datetime.min.replace(tzinfo=UTC)

    def stop(self) -> None:
        self._running = False

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
        now = datetime.now(UTC)
        due = (self.outbox.c.next_attempt_at.is_(None)) | (self.outbox.c.next_attempt_at <= now)
        query = (
            select(
                self.outbox.c.seq,
                self.outbox.c.event_type,
                self.outbox.c.source,
                self.outbox.c.body,
                self.outbox.c.attempts,
            )
            .where(self.outbox.c.sent_at.is_(None), due)
            .order_by(self.outbox.c.seq)
            .limit(BATCH)
        )
        locking = self.engine.dialect.name == "postgresql"
        if locking:
            query = query.with_for_update(skip_locked=True)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
            if not locking:
                conn.rollback()  # SQLite: hold no lock while talking to the broker
            sent: list[int] = []
            unroutable = []
            for row in rows:
                if self._publish(row):
                    sent.append(row.seq)
                else:
                    unroutable.append(row)
            if sent:
                conn.execute(
                    update(self.outbox)
                    .where(self.outbox.c.seq.in_(sent))
                    .values(
                        sent_at=datetime.now(UTC),
                        attempts=self.outbox.c.attempts + 1,
                        last_error=None,
                    )
                )
            by_attempts: dict[int, list[int]] = {}
            for row in unroutable:  # one UPDATE per attempt count, not one per row
                by_attempts.setdefault(row.attempts + 1, []).append(row.seq)
            for attempts, seqs in by_attempts.items():
                conn.execute(
                    update(self.outbox)
                    .where(self.outbox.c.seq.in_(seqs))
                    .values(**self._after_unroutable(attempts, len(seqs)))
                )
            conn.commit()
        metrics.OUTBOX_PUBLISHED.inc(len(sent))
        self._prune()
        if time.monotonic() - self._backlog_read_at >= 1.0:  # a gauge, not worth a COUNT per batch
            self._backlog_read_at = time.monotonic()
            metrics.OUTBOX_BACKLOG.set(self.backlog())
        return len(sent)

    def _after_unroutable(self, attempts: int, rows: int = 1) -> dict:
        """Retry an event no queue took, with growing delays; after ``max_unroutable_attempts``
        (about half a minute by default) park it: it stays in the outbox, marked ``unroutable``,
        for the retention period and ``python -m mpp_chassis.outbox republish`` sends it again
        once a consumer exists. Retrying forever would spend the relay on events nobody wants."""
        now = datetime.now(UTC)
        if attempts >= self.max_unroutable_attempts:
            metrics.OUTBOX_PARKED.inc(rows)
            return {"attempts": attempts, "sent_at": now, "last_error": UNROUTABLE}
        delay = min(2**attempts, MAX_BACKOFF_SECONDS)
        return {
            "attempts": attempts,
            "next_attempt_at": now + timedelta(seconds=delay),
            "last_error": UNROUTABLE,
        }

    def _publish(self, row) -> bool:
        """Publish one row; True when the broker confirmed it and routed it to a queue.

        An event type that just came back unroutable is not published again for
        ``UNROUTABLE_PAUSE`` seconds: its rows count an attempt without a round trip.
        """
        now = time.monotonic()
        if self._unroutable_until.get(row.event_type, 0.0) > now:
            return False
        exchange = event_exchange(row.source)
        envelope = json.loads(row.body)
        declare = [] if row.source in self._declared else [exchange]
        try:
            self.publisher.publish(
                envelope,
                exchange=exchange,
                routing_key=row.event_type,
                declare=declare,
                message_id=envelope["id"],
                headers={"nameko.correlation_id": envelope["correlation_id"]},
            )
        except UndeliverableMessage:
            _log.info("no queue bound for %s yet", row.event_type)
            self._unroutable_until[row.event_type] = now + UNROUTABLE_PAUSE
            return False
        self._declared.add(row.source)
        self._unroutable_until.pop(row.event_type, None)
        return True

    def backlog(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(
                select(func.count()).select_from(self.outbox).where(self.outbox.c.sent_at.is_(None))
            ).scalar_one()

    def _prune(self) -> None:
        now = datetime.now(UTC)
        if now - self._last_prune < timedelta(hours=1):
            return
        self._last_prune = now
        with self.engine.begin() as conn:
            conn.execute(
                delete(self.outbox).where(
                    self.outbox.c.sent_at.is_not(None), self.outbox.c.sent_at < now - RETENTION
                )
            )


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


def main(argv: list[str] | None = None) -> int:
    import argparse
    import importlib

    from mpp_chassis.db import make_engine
    from mpp_chassis.migrate import SERVICES, default_url

    parser = argparse.ArgumentParser(prog="python -m mpp_chassis.outbox")
    commands = parser.add_subparsers(dest="command", required=True)
    again = commands.add_parser("republish", help="send parked (unroutable) events again")
    again.add_argument("service", choices=SERVICES)
    again.add_argument("--type", dest="event_type", help="only this event type")
    args = parser.parse_args(argv)
    tables = importlib.import_module(f"mpp_{args.service}.adapters.tables")
    engine = make_engine(default_url(args.service))
    count = republish(engine, tables.metadata.tables["outbox"], args.event_type)
    print(f"{count} parked event(s) of {args.service} returned to the outbox relay")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

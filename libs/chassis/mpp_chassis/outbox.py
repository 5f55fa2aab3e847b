"""The outbox relay: publishes stored events with publisher confirms, then marks them sent.

An event is marked sent only after the broker confirmed it *and* routed it to at least one queue
(``mandatory``): a broker that is down, a connection that drops, or a consumer whose queue
does not exist yet only delays publication. A relay that dies between the confirm and the
update publishes the event again on restart; consumers deduplicate by event id, so
at-least-once is enough. On PostgreSQL rows are claimed with ``FOR UPDATE SKIP LOCKED``, so
replicas never publish a row twice at the same time.
"""

from __future__ import annotations

import json
import logging
import threading
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
        self._running = True
        self.failures = 0  # consecutive failed rounds; 0 while the broker answers
        self._declared: set[str] = set()
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
        sent = 0
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
            if not locking:
                conn.rollback()  # SQLite: hold no lock while talking to the broker
            for row in rows:
                outcome = self._publish(row)
                if outcome is None:
                    conn.execute(
                        update(self.outbox)
                        .where(self.outbox.c.seq == row.seq)
                        .values(sent_at=datetime.now(UTC), attempts=row.attempts + 1)
                    )
                    sent += 1
                else:
                    delay = min(2 ** min(row.attempts, 5), MAX_BACKOFF_SECONDS)
                    conn.execute(
                        update(self.outbox)
                        .where(self.outbox.c.seq == row.seq)
                        .values(
                            attempts=row.attempts + 1,
                            next_attempt_at=datetime.now(UTC) + timedelta(seconds=delay),
                            last_error=outcome,
                        )
                    )
                if not locking:
                    conn.commit()
            conn.commit()
        metrics.OUTBOX_PUBLISHED.inc(sent)
        self._prune()
        metrics.OUTBOX_BACKLOG.set(self.backlog())
        return sent

    def _publish(self, row) -> str | None:
        """Publish one row; None when confirmed and routed, else why it was not."""
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
            _log.warning("event has no queue bound yet", extra={"event_type": row.event_type})
            return "unroutable"
        self._declared.add(row.source)
        return None

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

"""Database access for nameko services: one engine per container, one unit of work per worker.

The unit of work is the only way services write: state changes and the events they imply are
stored in one transaction (the transactional outbox), and handled event ids are recorded in the
same transaction as the handler's effect (idempotent consumers).
"""

from __future__ import annotations

import copy
import functools
import json
import logging
import threading
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from nameko.extensions import DependencyProvider
from sqlalchemy import MetaData, bindparam, delete, event, insert, select, true
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from mpp_chassis import claims, context
from mpp_chassis.engine import (
    POOL_SPARE,
    STATEMENTS_ALONE,
    autocommit_pool_size,
    make_engine,
    statements_alone,
    statements_in_transactions,
)
from mpp_chassis.outbox import HANDOVER_GRACE_SECONDS, OutboxRelay
from mpp_chassis.prepared import PREPARE, prepared_statements
from mpp_contracts.envelope import make_envelope
from mpp_contracts.events import CONSUMED

__all__ = ["Database", "UnitOfWork", "make_engine"]  # make_engine: its home is mpp_chassis.engine

_log = logging.getLogger(__name__)

# where a session keeps the outbox rows its transaction stored: they go to the relay only if that
# transaction commits (units of work sharing a transaction, ``UnitOfWork.sharing``, share them)
_STORED = "mpp_outbox_rows"


@functools.cache
def _insert(table):
    """``INSERT INTO table`` built once (values are bound per execution)."""
    return insert(table)


_EVENT_COLUMNS = (
    "event_id",
    "event_type",
    "source",
    "body",
    "correlation_id",
    "created_at",
    "attempts",
    "routing_key",
)


@functools.cache
def _with_event(statement, outbox, changed_only: bool):
    """``WITH change AS (statement) INSERT INTO outbox …``: PostgreSQL runs a data-modifying CTE
    once, to completion, even when nothing reads it (``changed_only``: the row is selected ``FROM
    change``, so none when nothing changed). Built once per statement."""
    columns = {c: bindparam(f"outbox_{c}", type_=outbox.c[c].type) for c in _EVENT_COLUMNS}
    if changed_only:
        change = select(*columns.values()).select_from(statement.returning(true()).cte("change"))
        return insert(outbox).from_select(list(columns), change).execution_options(**PREPARE)
    return (
        insert(outbox).values(columns).add_cte(statement.cte("change")).execution_options(**PREPARE)
    )  # PostgreSQL only (SQLite runs statement and event apart): planned once per connection


class UnitOfWork:
    """One worker's session, its pending events and its handled-event claims."""

    def __init__(
        self,
        session: Session,
        outbox,
        processed,
        *,
        source: str,
        mall: str,
        context_data: dict,
        on_commit,
        autocommit: Engine | None = None,
        read_only: bool = False,
        alone: bool = False,
    ) -> None:
        self.session = session
        self.read_only = read_only
        self.alone = alone  # each statement commits alone: no event can commit with a change
        self._autocommit = autocommit
        self._outbox = outbox
        self._processed = processed
        self._source = source
        self._mall = mall
        self._context_data = context_data
        self._on_commit = on_commit

    @property
    def _events(self) -> list[dict[str, Any]]:
        """The outbox rows stored in this transaction so far."""
        return self.session.info.setdefault(_STORED, [])

    @property
    def correlation_id(self) -> str:
        return context.ensure_correlation(self._context_data)

    def add_event(
        self, event_type: str, payload: dict[str, Any], routing_key: str | None = None
    ) -> dict[str, Any]:
        """Store an event in the outbox, inside the current transaction. It is published with
        ``routing_key`` (default: its type), so consumers can bind to some events of a type."""
        envelope, row = self._event(event_type, payload, routing_key)
        self.session.execute(_insert(self._outbox), row)
        self._events.append(row)
        return envelope

    def event_row(
        self, event_type: str, payload: dict[str, Any], routing_key: str | None = None
    ) -> dict[str, Any]:
        """An event's outbox row, not yet stored: for :meth:`store_events` (several in one
        statement) and :meth:`execute_with_event` (with the change that implies it)."""
        return self._event(event_type, payload, routing_key)[1]

    def _event(
        self, event_type: str, payload: dict[str, Any], routing_key: str | None = None
    ) -> tuple[dict, dict]:
        self._writable()
        if self._outbox is None or self.alone:
            raise RuntimeError(f"{self._source} stores no events here: no outbox, or alone")
        envelope = make_envelope(
            event_type,
            payload,
            source=self._source,
            mall=self._mall,
            correlation_id=self.correlation_id,
        )
        return envelope, {
            "event_id": envelope["id"],
            "event_type": event_type,
            "source": self._source,
            "body": json.dumps(envelope),
            "correlation_id": envelope["correlation_id"],
            "created_at": datetime.now(UTC),
            "attempts": 0,
            "routing_key": routing_key,
        }

    def store_events(self, rows: list[dict[str, Any]]) -> None:
        """Store events (:meth:`event_row`) in one multi-row insert, in this transaction."""
        if rows:
            self.session.execute(_insert(self._outbox), rows)
            self._events.extend(rows)

    def execute_with_event(
        self,
        statement,
        params: dict[str, Any],
        event_type: str,
        payload: dict[str, Any],
        routing_key: str | None = None,
        *,
        changed_only: bool = False,
    ) -> str | None:
        """Run ``statement`` (an ``INSERT`` or ``UPDATE`` without ``RETURNING``) and store the
        event it implies, in one round trip where the database allows it: on PostgreSQL the
        change is a data-modifying CTE of the outbox insert; elsewhere two statements. The
        statement's parameters must not be named ``outbox_*``. ``changed_only``: the event is
        stored only if the statement (then an ``UPDATE`` of one row at most) changed a row.
        The stored event's id (None: not stored). Built once per statement: pass it as is."""
        row = self.event_row(event_type, payload, routing_key)
        if self.session.get_bind().dialect.name == "postgresql":
            combined = _with_event(statement, self._outbox, changed_only)
            outbox = {f"outbox_{k}": v for k, v in row.items()}
            stored = self.session.execute(combined, {**params, **outbox}).rowcount > 0
        else:
            stored = self.session.execute(statement, params).rowcount > 0 or not changed_only
            if stored:
                self.session.execute(_insert(self._outbox), row)
        if not stored:
            return None
        self._events.append(row)
        return row["event_id"]

    def sharing(self, leader: UnitOfWork) -> UnitOfWork:
        """This worker's unit of work writing in ``leader``'s transaction (group commit,
        :mod:`mpp_chassis.grouping`): its events carry this worker's correlation id and commit,
        or roll back, with the leader's."""
        joined = copy.copy(self)
        joined.session = leader.session
        return joined

    def correlated(self, correlation_id: str | None) -> UnitOfWork:
        """This unit of work (same session, same transaction, same pending events) for one item
        of a batched call: the events it stores carry ``correlation_id``, the id of the request
        the item came from, not the batch's. Without an id, this unit of work itself."""
        if not correlation_id:
            return self
        joined = copy.copy(self)
        joined._context_data = {**self._context_data, context.CORRELATION_KEY: correlation_id}
        return joined

    def execute_now(self, statement, params: dict[str, Any]):
        """Run one statement in a transaction of its own (autocommit), outside this unit of work,
        and return its rows (or, for a statement without rows, how many it changed).

        For the hot counter rows of a busy line: an increment inside the unit of work holds its
        row lock across every later round trip until commit, so concurrent callers queue behind
        it; alone, the lock lasts the statement's own execution. The effect stays even when the
        unit of work rolls back, so the caller compensates (or accepts a gap in a numbering).
        """
        if self._autocommit is not None:  # connections that are always in autocommit
            connection = self._autocommit.connect()
        else:  # switched for this use, and switched back (one more round trip) when returned
            engine = self.session.get_bind()
            connection = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        with connection as conn:
            result = conn.execute(statement, params)
            return result.all() if result.returns_rows else result.rowcount

    def claim_event(self, event_id: str, handler: str) -> bool:
        """Record that ``handler`` handles ``event_id``; False if it already did.

        Call first in a handler. The row commits with the handler's effect, so a redelivery after
        a crash before commit is handled again, and one after commit changes nothing.
        """
        self._claimable()
        claimed = self.session.execute(
            claims.claim_statement(self._processed),
            {"event_id": event_id, "handler": handler, "processed_at": datetime.now(UTC)},
        ).first()
        if claimed is None:
            _log.info("duplicate event skipped", extra={"handler": handler})
            return False
        return True

    def claimed(
        self, events: Iterable[dict], handler: str, *, riding: bool = False
    ) -> Iterator[dict]:
        """The events of a batch that ``handler`` has not handled yet, each claimed
        (:meth:`claim_event`) in this unit of work just before the caller applies it; a batch
        handler loops over them and commits once. While an event is applied, the events it
        causes, and the log lines, carry its own correlation id; the worker's is back once the
        loop ends. ``riding``: on PostgreSQL each event comes once, unclaimed, for its claim to
        ride in its effect's first statement (:func:`mpp_chassis.claims.riding_claim`)."""
        worker = self.correlation_id
        rides = riding and self.session.get_bind().dialect.name == "postgresql"
        seen: set[str] = set()
        try:
            for event in events:
                self._context_data[context.CORRELATION_KEY] = event["correlation_id"]
                context.correlation_id.set(event["correlation_id"])
                context.event_id.set(event["id"])
                if rides and event["id"] not in seen:
                    seen.add(event["id"])
                    yield event
                elif not rides and self.claim_event(event["id"], handler):
                    yield event
        finally:
            self._context_data[context.CORRELATION_KEY] = worker
            context.correlation_id.set(worker)
            context.event_id.set(None)

    def apply_claimed(self, events: Iterable[dict], handler: str, change) -> None:
        """Claim a batch's events for ``handler`` and apply ``change`` (a handler's **whole**
        effect, :class:`mpp_chassis.claims.ClaimedChange`) to those it had not handled yet.
        On PostgreSQL one statement, committed on its own: call it first and alone (the
        handler's ``commit()`` then has nothing to do); on SQLite two, in this transaction."""
        self._claimable()
        claims.apply_claimed(self.session, self._processed, events, handler, change)

    def _claimable(self) -> None:
        self._writable()
        if self._processed is None or self.alone:
            raise RuntimeError(f"{self._source} claims no events here: none handled, or alone")

    def _writable(self) -> None:
        if self.read_only:
            raise RuntimeError("a read-only entry point's unit of work writes nothing")

    def commit(self) -> None:
        """Commit (not past the caller's deadline), then hand the outbox rows stored to the relay
        (``on_commit``), which publishes them from memory. A commit that fails hands nothing over:
        if it did commit after all, the relay's poll finds the rows."""
        self._writable()
        if not self.session.info.get(STATEMENTS_ALONE):  # alone, each statement has committed
            context.refuse_past_deadline(self._context_data, self.rollback)
        stored = self.session.info.pop(_STORED, None)
        self.session.commit()
        if stored:
            self._on_commit(stored)

    def rollback(self) -> None:
        self.session.info.pop(_STORED, None)
        self.session.rollback()


# Handled-event ids are kept this long (PROCESSED_EVENTS_RETENTION_DAYS), far beyond the longest
# time the same event can come again: a relay re-publishing after a crash (seconds), the backoff
# steps of a failed event (EVENT_RETRY_DELAYS, 20.5 min; a failed event claimed nothing). A
# dead letter replayed later was never applied, so it claims afresh.
DEFAULT_PROCESSED_RETENTION_DAYS = 7
PRUNE_INTERVAL_SECONDS = 3600


def prune_processed_events(engine: Engine, processed, older_than: datetime) -> int:
    """Forget handled-event ids claimed before ``older_than``; how many were forgotten."""
    with engine.begin() as conn:
        return conn.execute(delete(processed).where(processed.c.processed_at < older_than)).rowcount


class Database(DependencyProvider):
    """Injects a :class:`UnitOfWork`; the engine's URL is the ``DB_URL`` config key.

    A service whose metadata holds the chassis's event tables (``add_chassis_tables``: it emits
    and handles events) also gets their housekeeping: the outbox relay (see
    :mod:`mpp_chassis.outbox`) and, hourly, forgetting handled-event ids older than
    ``PROCESSED_EVENTS_RETENTION_DAYS`` (7). A service without them (the gateway) carries no
    outbox, no relay and no pruning; its units of work refuse ``add_event`` and ``claim_event``.

    ``read_only`` entry points refuse to write or commit; on PostgreSQL each of their statements
    runs alone in autocommit (one round trip, not ``BEGIN``, it, ``ROLLBACK``), so they share no
    snapshot: only for one statement, or ones that need not agree (decision 0006). ``alone``
    entry points may write, each statement committed on its own: for reads and **one** write
    that carries no event (their units of work refuse events and claims).
    """

    def __init__(
        self,
        metadata: MetaData,
        url_key: str = "DB_URL",
        read_only: Iterable[str] = (),
        alone: Iterable[str] = (),
    ) -> None:
        self.metadata = metadata
        self.url_key = url_key
        self.read_only = frozenset(read_only)
        self.alone = frozenset(alone)

    def setup(self) -> None:
        config = self.container.config
        # every worker may hold a connection at once, and the outbox relay one more; no
        # overflow: a process never holds more, so the mall's connections to one PostgreSQL
        # server have a known bound (docs/operations.md) and a burst cannot exhaust the server
        prepared = prepared_statements(config)
        self.engine = make_engine(
            config[self.url_key],
            pool_size=self.container.max_workers + POOL_SPARE,
            max_overflow=0,
            prepared=prepared,
        )
        self.sessionmaker = sessionmaker(bind=self.engine, expire_on_commit=False)
        # a transaction rolled back by the session itself (a failed flush, ``session.rollback()``)
        # hands nothing over, even if the unit of work commits a later one
        event.listen(self.sessionmaker, "after_rollback", _forget_stored)
        self.postgresql = self.engine.dialect.name == "postgresql"
        if self.postgresql:
            event.listen(self.sessionmaker, "after_begin", statements_alone)
            event.listen(self.engine, "checkin", statements_in_transactions)
        named = self.read_only | self.alone
        unknown = named and named - {e.method_name for e in self.container.entrypoints}
        if unknown:
            raise ValueError(f"read_only/alone name no entry point: {', '.join(sorted(unknown))}")
        # ``UnitOfWork.execute_now``'s engine: its connections stay in autocommit, so a statement
        # costs one round trip (switching a pooled connection costs a ``SET`` when it returns);
        # opened only when first used (only the queue's take-ticket uses it)
        self.autocommit = (
            make_engine(
                config[self.url_key],
                pool_size=autocommit_pool_size(self.container.max_workers),
                max_overflow=0,
                prepared=prepared,
                isolation_level="AUTOCOMMIT",
            )
            if self.engine.dialect.name == "postgresql"
            else None
        )
        self.outbox = self.metadata.tables.get("outbox")
        self.processed = self.metadata.tables.get("processed_events")
        self.source = self.container.service_name
        self.mall = str(config.get("MALL_ID", "mpp-local"))
        self.wakeup = threading.Event()
        self.relay = (
            None
            if self.outbox is None
            else OutboxRelay(
                engine=self.engine,
                outbox=self.outbox,
                amqp_uri=config["AMQP_URI"],
                wakeup=self.wakeup,
                poll_seconds=float(config.get("OUTBOX_POLL_SECONDS", 1.0)),
                max_unroutable_attempts=int(config.get("OUTBOX_UNROUTABLE_ATTEMPTS", 5)),
                park_after_seconds=float(config.get("OUTBOX_PARK_AFTER_SECONDS", 30)),
                must_route=CONSUMED,
                handover_grace_seconds=float(
                    config.get("OUTBOX_HANDOVER_GRACE_SECONDS", HANDOVER_GRACE_SECONDS)
                ),
            )
        )
        self.hand_over = _ignore if self.relay is None else self.relay.hand_over
        self.sessions: dict = {}
        self.retention = timedelta(
            days=float(
                config.get("PROCESSED_EVENTS_RETENTION_DAYS") or DEFAULT_PROCESSED_RETENTION_DAYS
            )
        )
        self.stopping = threading.Event()

    def start(self) -> None:
        if self.relay is not None:
            self.container.spawn_managed_thread(self.relay.run)
        if self.processed is not None:
            self.container.spawn_managed_thread(self.prune_loop)

    def prune_loop(self) -> None:
        while not self.stopping.wait(PRUNE_INTERVAL_SECONDS):
            try:
                forgotten = prune_processed_events(
                    self.engine, self.processed, datetime.now(UTC) - self.retention
                )
            except Exception:  # the database may be away; the next hour tries again
                _log.warning("pruning handled-event ids failed", exc_info=True)
                continue
            if forgotten:
                _log.info("handled-event ids pruned", extra={"count": forgotten})

    def ping(self) -> None:
        """Raise unless the database answers (the event handlers' gate asks while it is shut)."""
        with self.engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")

    def stop(self) -> None:
        self.stopping.set()
        if self.relay is not None:
            self.relay.stop()
        self.wakeup.set()
        if self.autocommit is not None:  # workers are done when dependencies stop
            self.autocommit.dispose()

    def kill(self) -> None:
        self.stop()

    def get_dependency(self, worker_ctx) -> UnitOfWork:
        session = self.sessionmaker()
        self.sessions[worker_ctx] = session
        read_only = bool(self.read_only) and worker_ctx.entrypoint.method_name in self.read_only
        alone = bool(self.alone) and worker_ctx.entrypoint.method_name in self.alone
        session.info[STATEMENTS_ALONE] = (read_only or alone) and self.postgresql
        return UnitOfWork(
            session,
            self.outbox,
            self.processed,
            source=self.source,
            mall=self.mall,
            context_data=worker_ctx.context_data,
            on_commit=self.hand_over,
            autocommit=self.autocommit,
            read_only=read_only,
            alone=alone,
        )

    def end_transaction(self, worker_ctx) -> None:
        """Roll back the worker's transaction now and return its connection. An event handler
        whose worker failed calls it before it talks to the broker (a retry's publish, a
        batch's fallback): no lock is held across that round trip. SQLite's write lock held
        there stalled every other worker, whose wait for it blocks the event loop."""
        session = self.sessions.get(worker_ctx)
        if session is not None:
            session.info.pop(_STORED, None)
            session.close()

    def worker_teardown(self, worker_ctx) -> None:
        session = self.sessions.pop(worker_ctx, None)
        if session is not None:
            session.info.pop(_STORED, None)
            session.close()


def _forget_stored(session: Session) -> None:
    session.info.pop(_STORED, None)


def _ignore(_rows: list[dict[str, Any]]) -> None:
    """A database without an outbox stores no events to hand over."""

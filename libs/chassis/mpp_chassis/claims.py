"""An event handler's whole effect and its claims in one statement (``UnitOfWork.apply_claimed``).

A handler whose effect on a batch of events is one SQL statement writes it once, over
``claimed``: a row per event of the batch that this handler claimed now (not handled before),
with the payload's values under the names the :class:`ClaimedChange` declares and ``ordinal``,
the event's place in the batch (a statement where two events of one batch touch the same row
picks the first or the last by it, as applying them in turn would have).

On PostgreSQL the claims ride in the same statement, data-modifying CTEs before the change::

    WITH batch (event_id, ordinal, <columns>) AS (VALUES …),
         claim AS (INSERT INTO processed_events … SELECT … FROM batch
                   ON CONFLICT (event_id, handler) DO NOTHING RETURNING event_id),
         claimed AS (SELECT batch.* FROM batch JOIN claim …)
    <the change>

One statement is atomic on its own, so it runs in autocommit: one round trip for the batch where
``BEGIN``, a claim and a change per event and ``COMMIT`` took 2 + 2 × N. On SQLite (no
data-modifying CTEs) the batch is claimed with one multi-row ``INSERT … ON CONFLICT DO NOTHING
RETURNING``, then the same change runs over ``WITH claimed (…) AS (VALUES …)`` holding the
claimed events only, both in the unit of work's transaction, which the handler commits.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import TextClause
from sqlalchemy.types import TypeEngine

from mpp_chassis.prepared import PREPARE
from mpp_chassis.types import UtcDateTime

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RidingClaim:
    """One event's claim for a handler, carried by the first statement of the event's effect
    (``UnitOfWork.claimed(riding=True)``, :func:`riding_claim`): written after :func:`with_claim`,
    that statement reads its values ``FROM claim``, a row when the event is claimed now, so it
    changes nothing (and returns no row) for an event handled before. ``rides``: PostgreSQL,
    the claim is a data-modifying CTE of the statement; SQLite, it was made before."""

    event_id: str
    handler: str
    rides: bool

    @property
    def params(self) -> dict[str, Any]:
        if not self.rides:
            return {"claim_event_id": self.event_id}
        return {
            "claim_event_id": self.event_id,
            "claim_handler": self.handler,
            "claim_at": datetime.now(UTC),
        }


def riding_claim(session: Session, event: dict, handler: str) -> RidingClaim:
    """The claim of an event from ``UnitOfWork.claimed(…, riding=True)``: made by the effect's
    first statement on PostgreSQL, already made on SQLite."""
    return RidingClaim(event["id"], handler, session.get_bind().dialect.name == "postgresql")


@functools.cache
def claim_statement(processed) -> TextClause:
    """``UnitOfWork.claim_event``: ``INSERT … ON CONFLICT DO NOTHING RETURNING`` (PostgreSQL and
    SQLite alike): one round trip, where a savepoint around a plain insert took three. A
    concurrent claim of the same event waits for the first transaction and then inserts
    nothing."""
    return (
        text(
            f"INSERT INTO {processed.name} (event_id, handler, processed_at) "  # noqa: S608
            "VALUES (:event_id, :handler, :processed_at) "
            "ON CONFLICT (event_id, handler) DO NOTHING RETURNING event_id"
        )
        .bindparams(bindparam("processed_at", type_=processed.c.processed_at.type))
        .execution_options(**PREPARE)
    )


_RIDING = (
    "WITH claim AS (INSERT INTO processed_events (event_id, handler, processed_at) "
    "VALUES (:claim_event_id, :claim_handler, :claim_at) "
    "ON CONFLICT (event_id, handler) DO NOTHING RETURNING event_id) "
)
_MADE = "WITH claim (event_id) AS (VALUES (:claim_event_id)) "


def with_claim(sql: str, rides: bool) -> TextClause:
    """``sql`` (reading ``FROM claim``) after the CTE ``claim`` of a :class:`RidingClaim`."""
    if rides:
        riding = text(_RIDING + sql).bindparams(bindparam("claim_at", type_=UtcDateTime()))
        return riding.execution_options(**PREPARE)  # PostgreSQL's: planned once per connection
    return text(_MADE + sql)


class ClaimedChange:
    """A handler's whole effect on a batch, as one statement over ``claimed`` (see the module).

    ``columns`` name the payload values each claimed row carries, with their types (a table
    column's ``.type``): PostgreSQL types the ``VALUES`` list by them, and timestamps are stored
    as the columns store them.
    """

    def __init__(self, sql: str, **columns: TypeEngine) -> None:
        self.sql = sql
        self.columns = columns

    def rows(self, events: Iterable[dict]) -> dict[str, Any]:
        """The parameters of ``events``' rows (``event_id_<n>``, ``<column>_<n>``)."""
        params: dict[str, Any] = {}
        for n, event in enumerate(events):
            params[f"event_id_{n}"] = event["id"]
            for name in self.columns:
                params[f"{name}_{n}"] = event["payload"][name]
        return params

    def _binds(self, rows: int) -> list:
        return [
            bindparam(f"{name}_{n}", type_=type_)
            for n in range(rows)
            for name, type_ in self.columns.items()
        ]


@functools.cache
def claim_and_apply(change: ClaimedChange, processed, rows: int) -> TextClause:
    """PostgreSQL: claim ``rows`` events and apply the change to the claimed ones, one statement.
    Built once per change and batch size."""
    event_type = processed.c.event_id.type.compile(dialect=postgresql.dialect())
    casts = {
        name: type_.compile(dialect=postgresql.dialect()) for name, type_ in change.columns.items()
    }
    values = ", ".join(
        f"(CAST(:event_id_{n} AS {event_type}), {n}"
        + "".join(f", CAST(:{name}_{n} AS {cast})" for name, cast in casts.items())
        + ")"
        for n in range(rows)
    )
    names = ", ".join(("event_id", "ordinal", *change.columns))
    sql = (
        f"WITH batch ({names}) AS (VALUES {values}), "
        f"claim AS (INSERT INTO {processed.name} (event_id, handler, processed_at) "  # noqa: S608
        "SELECT event_id, CAST(:handler AS VARCHAR), :processed_at FROM batch "
        "ON CONFLICT (event_id, handler) DO NOTHING RETURNING event_id), "
        "claimed AS (SELECT batch.* FROM batch JOIN claim ON claim.event_id = batch.event_id) "
        f"{change.sql}"
    )
    return (
        text(sql)
        .bindparams(
            bindparam("processed_at", type_=processed.c.processed_at.type), *change._binds(rows)
        )
        .execution_options(**PREPARE)  # planned once per connection and batch size
    )


@functools.cache
def claim_each(processed, rows: int) -> TextClause:
    """SQLite: claim ``rows`` events in one statement; the ids claimed now come back."""
    values = ", ".join(f"(:event_id_{n}, :handler, :processed_at)" for n in range(rows))
    return text(
        f"INSERT INTO {processed.name} (event_id, handler, processed_at) "  # noqa: S608
        f"VALUES {values} ON CONFLICT (event_id, handler) DO NOTHING RETURNING event_id"
    ).bindparams(bindparam("processed_at", type_=processed.c.processed_at.type))


def apply_claimed(
    session: Session, processed, events: Iterable[dict], handler: str, change: ClaimedChange
) -> None:
    """``UnitOfWork.apply_claimed``: see the module."""
    unique = list({event["id"]: event for event in events}.values())  # twice in a batch: once
    if not unique:
        return
    params = {"handler": handler, "processed_at": datetime.now(UTC)}
    if session.get_bind().dialect.name == "postgresql":
        if session.in_transaction():
            raise RuntimeError("apply_claimed commits on its own: nothing may precede it")
        statement = claim_and_apply(change, processed, len(unique))
        # psycopg2 sends its BEGIN with the first statement: none in autocommit (a client-side
        # switch, so switching it back as the connection returns to the pool costs nothing)
        dbapi = session.connection().connection.dbapi_connection
        dbapi.autocommit = True
        try:
            session.execute(statement, {**params, **change.rows(unique)})
        finally:
            if not dbapi.closed:
                dbapi.autocommit = False
            session.close()
        return
    ids = {f"event_id_{n}": event["id"] for n, event in enumerate(unique)}
    new = set(session.execute(claim_each(processed, len(unique)), {**params, **ids}).scalars())
    claimed = [event for event in unique if event["id"] in new]
    if len(claimed) < len(unique):
        _log.info("duplicate event skipped", extra={"handler": handler})
    if claimed:
        session.execute(change_claimed(change, len(claimed)), change.rows(claimed))


@functools.cache
def change_claimed(change: ClaimedChange, rows: int) -> TextClause:
    """SQLite: the change over ``rows`` events already claimed."""
    values = ", ".join(
        f"(:event_id_{n}, {n}" + "".join(f", :{name}_{n}" for name in change.columns) + ")"
        for n in range(rows)
    )
    names = ", ".join(("event_id", "ordinal", *change.columns))
    return text(f"WITH claimed ({names}) AS (VALUES {values}) {change.sql}").bindparams(
        *change._binds(rows)
    )

"""Tables every service database carries: the outbox and the record of handled events."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    text,
)

from mpp_chassis.types import UtcDateTime

UNSENT = "sent_at IS NULL"
UNSENT_INDEX = "ix_outbox_unsent"
UNROUTABLE = "unroutable"  # ``last_error`` of an event no queue took: parked once marked sent
PARKED = f"last_error = '{UNROUTABLE}'"
PARKED_INDEX = "ix_outbox_parked"


def add_chassis_tables(metadata: MetaData) -> tuple[Table, Table]:
    """Add ``outbox`` and ``processed_events`` to a service's metadata (and so its migrations)."""
    outbox = Table(
        "outbox",
        metadata,
        Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
        Column("event_id", String(36), nullable=False, unique=True),
        Column("event_type", String(64), nullable=False),
        Column("source", String(32), nullable=False),
        Column("body", Text, nullable=False),
        Column("correlation_id", String(64), nullable=True),
        Column("created_at", UtcDateTime(), nullable=False),
        Column("sent_at", UtcDateTime(), nullable=True, index=True),
        Column("attempts", Integer, nullable=False, default=0),
        Column("next_attempt_at", UtcDateTime(), nullable=True),
        Column("last_error", String(200), nullable=True),
        # the routing key the relay publishes with; NULL = the event type (a consumer binds the
        # type). A producer routes some events of a type apart (``ticket_completed.free``), so
        # consumers bind what they need: the type alone, or ``<type>.#`` for every one of them
        Column("routing_key", String(100), nullable=True),
        # the relay's work: unsent rows in order. Partial, so it stays as small as the backlog
        # however many sent rows are kept, and read by an index scan that marks the entries of
        # rows since sent as dead (the bitmap scan of ``sent_at IS NULL`` visited every version
        # updated since the last vacuum: ~1 ms per relay round on a busy floor)
        Index(
            UNSENT_INDEX,
            "seq",
            postgresql_where=text(UNSENT),
            sqlite_where=text(UNSENT),
        ),
        # the parked rows (never pruned): the relay counts them every second for a gauge, and
        # without it that count read every row kept (a week of events: ~20 ms a second each)
        Index(
            PARKED_INDEX,
            "seq",
            postgresql_where=text(PARKED),
            sqlite_where=text(PARKED),
        ),
    )
    processed = Table(
        "processed_events",
        metadata,
        Column("event_id", String(36), primary_key=True),
        Column("handler", String(100), primary_key=True),
        Column("processed_at", UtcDateTime(), nullable=False),
        # pruning (Database's housekeeping) deletes by age
        Index("ix_processed_events_processed_at", "processed_at"),
    )
    return outbox, processed


def _create_outbox_partial_index(op, name: str, where: str) -> None:
    op.create_index(
        name,
        "outbox",
        ["seq"],
        unique=False,
        postgresql_where=text(where),
        sqlite_where=text(where),
    )


def create_unsent_index(op) -> None:
    """Alembic step shared by every service's migration that adds ``ix_outbox_unsent``."""
    _create_outbox_partial_index(op, UNSENT_INDEX, UNSENT)


def drop_unsent_index(op) -> None:
    op.drop_index(UNSENT_INDEX, table_name="outbox")


def create_parked_index(op) -> None:
    """Alembic step shared by every service's migration that adds ``ix_outbox_parked``."""
    _create_outbox_partial_index(op, PARKED_INDEX, PARKED)


def drop_parked_index(op) -> None:
    op.drop_index(PARKED_INDEX, table_name="outbox")


def add_routing_key(op) -> None:
    """Alembic step shared by every service's migration that adds ``outbox.routing_key``."""
    import sqlalchemy as sa

    op.add_column("outbox", sa.Column("routing_key", sa.String(100), nullable=True))


def drop_routing_key(op) -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("routing_key")

"""Tables every service database carries: the outbox and the record of handled events."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

from mpp_chassis.types import UtcDateTime


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
    )
    processed = Table(
        "processed_events",
        metadata,
        Column("event_id", String(36), primary_key=True),
        Column("handler", String(100), primary_key=True),
        Column("processed_at", UtcDateTime(), nullable=False),
    )
    return outbox, processed

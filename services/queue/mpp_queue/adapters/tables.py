"""The queue service's database: catalogue, counters, tickets and per-day number sequences."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
)

from mpp_chassis.tables import add_chassis_tables
from mpp_chassis.types import UtcDateTime

metadata = MetaData()

agencies = Table(
    "agencies",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("code", String(16), nullable=False, unique=True),
    Column("name", String(120), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
)

services = Table(
    "services",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("agency_id", String(36), ForeignKey("agencies.id"), nullable=False, index=True),
    Column("code", String(24), nullable=False),
    Column("name", String(120), nullable=False),
    Column("fee_idr", Integer, nullable=False),
    Column("sla_minutes", Integer, nullable=False),
    Column("prefix", String(3), nullable=False),
    Column("requirements", JSON, nullable=False),
    Column("daily_quota", Integer, nullable=True),
    Column("active", Boolean, nullable=False, default=True),
    Column("created_at", UtcDateTime(), nullable=False),
    UniqueConstraint("agency_id", "code", name="uq_services_agency_code"),
)

counters = Table(
    "counters",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("agency_id", String(36), ForeignKey("agencies.id"), nullable=False, index=True),
    Column("name", String(40), nullable=False),
    Column("service_ids", JSON, nullable=False),
    Column("is_open", Boolean, nullable=False, default=True),
    Column("priority_streak", Integer, nullable=False, default=0),
    Column("created_at", UtcDateTime(), nullable=False),
)

ticket_sequences = Table(
    "ticket_sequences",
    metadata,
    Column("prefix", String(3), primary_key=True),
    Column("day", Date, primary_key=True),
    Column("last_seq", Integer, nullable=False),
)

tickets = Table(
    "tickets",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("journey_id", String(36), nullable=False, index=True),
    Column("number", String(16), nullable=False),
    Column("day", Date, nullable=False),
    Column("agency_id", String(36), nullable=False),
    Column("service_id", String(36), nullable=False),
    Column("status", String(16), nullable=False),
    Column("priority", String(16), nullable=True),
    Column("nik_hash", String(64), nullable=True, index=True),
    Column("nik_last4", String(4), nullable=True),
    Column("phone", String(16), nullable=True),
    Column("issued_at", UtcDateTime(), nullable=False),
    Column("queued_at", UtcDateTime(), nullable=False),
    Column("call_count", Integer, nullable=False, default=0),
    Column("called_at", UtcDateTime(), nullable=True),
    Column("last_called_at", UtcDateTime(), nullable=True),
    Column("started_at", UtcDateTime(), nullable=True),
    Column("completed_at", UtcDateTime(), nullable=True),
    Column("ended_at", UtcDateTime(), nullable=True),
    Column("counter_id", String(36), nullable=True),
    Column("officer_id", String(36), nullable=True),
    Column("fee_idr", Integer, nullable=False, default=0),
    Column("payment_id", String(36), nullable=True),
    Column("payment_status", String(24), nullable=True),
    Column("rating_token", String(64), nullable=True),
    Column("rating_expires_at", UtcDateTime(), nullable=True),
    UniqueConstraint("day", "number", name="uq_tickets_day_number"),
    Index("ix_tickets_line", "service_id", "status", "day", "queued_at"),
)

add_chassis_tables(metadata)

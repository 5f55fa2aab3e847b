"""The rating service's database: invitations (one-time tokens) and ratings."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

from mpp_chassis.tables import add_chassis_tables
from mpp_chassis.types import UtcDateTime

metadata = MetaData()

invitations = Table(
    "invitations",
    metadata,
    Column("ticket_id", String(36), primary_key=True),
    Column("agency_id", String(36), nullable=False, index=True),
    Column("service_id", String(36), nullable=False),
    Column("counter_id", String(36), nullable=True),
    Column("officer_id", String(36), nullable=True),
    Column("fee_idr", Integer, nullable=True),
    Column("completed", Boolean, nullable=False, default=False),
    Column("completed_at", UtcDateTime(), nullable=True),
    Column("paid", Boolean, nullable=False, default=False),
    Column("token", String(64), nullable=True, unique=True),
    Column("expires_at", UtcDateTime(), nullable=True),
    Column("used_at", UtcDateTime(), nullable=True),
)

ratings = Table(
    "ratings",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("ticket_id", String(36), nullable=False, unique=True),
    Column("agency_id", String(36), nullable=False, index=True),
    Column("service_id", String(36), nullable=False, index=True),
    Column("counter_id", String(36), nullable=True),
    Column("officer_id", String(36), nullable=True),
    Column("stars", Integer, nullable=False),
    Column("answers", JSON, nullable=False),
    Column("comment", Text, nullable=True),
    Column("submitted_at", UtcDateTime(), nullable=False, index=True),
)

add_chassis_tables(metadata)

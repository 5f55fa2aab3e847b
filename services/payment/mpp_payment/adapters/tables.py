"""The payment service's database: its copy of the catalogue, invoices and notifications."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

from mpp_chassis.tables import add_chassis_tables
from mpp_chassis.types import UtcDateTime

metadata = MetaData()

catalogue = Table(
    "catalogue_services",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("agency_id", String(36), nullable=False),
    Column("code", String(24), nullable=False),
    Column("name", String(120), nullable=False),
    Column("fee_idr", Integer, nullable=False),
    Column("active", Boolean, nullable=False),
)

payments = Table(
    "payments",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("ticket_id", String(36), nullable=False, unique=True),
    Column("ticket_number", String(16), nullable=True),
    Column("agency_id", String(36), nullable=False, index=True),
    Column("service_id", String(36), nullable=False),
    Column("service_code", String(24), nullable=True),
    Column("amount_idr", Integer, nullable=False),
    Column("status", String(24), nullable=False),
    Column("method", String(16), nullable=False),
    Column("provider", String(16), nullable=False),
    Column("provider_ref", String(64), nullable=True),
    Column("qris_payload", Text, nullable=True),
    Column("va_number", String(32), nullable=True),
    Column("expires_at", UtcDateTime(), nullable=False),
    Column("paid_at", UtcDateTime(), nullable=True),
    Column("paid_amount_idr", Integer, nullable=True),
    Column("refunded_idr", Integer, nullable=False, default=0),
    Column("flag", String(32), nullable=True),
    Column("receipt_number", String(32), nullable=True, unique=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)

notifications = Table(
    "provider_notifications",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("provider", String(16), nullable=False),
    Column("payment_id", String(36), nullable=True, index=True),
    Column("body", Text, nullable=False),
    Column("outcome", String(32), nullable=False),
    Column("received_at", UtcDateTime(), nullable=False),
)

receipt_sequences = Table(
    "receipt_sequences",
    metadata,
    Column("day", Date, primary_key=True),
    Column("last_seq", Integer, nullable=False),
)

add_chassis_tables(metadata)

"""The gateway's own data: API keys (hashes only), pairing codes and idempotency records."""

from __future__ import annotations

from sqlalchemy import Column, Integer, MetaData, String, Table, Text

from mpp_chassis.types import UtcDateTime

metadata = MetaData()

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("role", String(20), nullable=False),
    Column("agency_id", String(36), nullable=True, index=True),
    Column("label", String(80), nullable=True),
    # "agency": acts for agency_id only; "mall": mall-wide (kiosk, mall display), agency_id owns it
    Column("scope", String(10), nullable=False, server_default="agency"),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("revoked_at", UtcDateTime(), nullable=True),
)

# a short-lived code an admin gives a device (board, kiosk, counter) to fetch its own key once
pairing_codes = Table(
    "pairing_codes",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("code_hash", String(64), nullable=False, unique=True),
    Column("role", String(20), nullable=False),
    Column("agency_id", String(36), nullable=False, index=True),
    Column("scope", String(10), nullable=False),
    Column("label", String(80), nullable=True),
    Column("created_by", String(36), nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False),
    Column("used_at", UtcDateTime(), nullable=True),
    Column("key_id", String(36), nullable=True),
)

idempotency = Table(
    "idempotency_keys",
    metadata,
    Column("scope", String(100), primary_key=True),
    Column("key", String(200), primary_key=True),
    Column("body_hash", String(64), nullable=False),
    Column("status", Integer, nullable=True),
    Column("response", Text, nullable=True),
    Column("created_at", UtcDateTime(), nullable=False, index=True),
)

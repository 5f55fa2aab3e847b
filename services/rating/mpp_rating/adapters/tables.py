"""The rating service's database: invitations (one-time tokens), ratings, the aggregate read model,
the catalogue copy (agency names) and complaints."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    false,
)

from mpp_chassis.tables import add_chassis_tables
from mpp_chassis.types import UtcDateTime
from mpp_rating.domain.ikm import ELEMENTS

metadata = MetaData()

invitations = Table(
    "invitations",
    metadata,
    Column("ticket_id", String(36), primary_key=True),
    Column("agency_id", String(36), nullable=False, index=True),
    Column("service_id", String(36), nullable=False),
    Column("counter_id", String(36), nullable=True),
    Column("officer_id", String(36), nullable=True),
    Column("completed", Boolean, nullable=False, default=False),
    Column("completed_at", UtcDateTime(), nullable=True),
    # the payment service's verdict arrived: paid, or no payment required
    Column("settled", Boolean, nullable=False, default=False),
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
    Column("flagged", Boolean, nullable=False, default=False, server_default=false()),
    Column("comment_published_at", UtcDateTime(), nullable=True),
    # a keyed submission's request (Idempotency-Key, scope and body, hashed by the gateway): the
    # same request taken over by a retry answers with this rating instead of "token used"
    Column("request_key", String(64), nullable=True),
    Index("ix_ratings_request_key", "request_key", unique=True),
)

#: The read model: one row per dimension × id × period (day, ISO week, month), holding only sums
#: and counts (``domain.aggregates.Aggregate``), so rows add and merge without loss.
rating_buckets = Table(
    "rating_buckets",
    metadata,
    Column("dimension", String(16), primary_key=True),
    Column("dimension_id", String(36), primary_key=True),
    Column("period_kind", String(8), primary_key=True),
    Column("period_start", Date, primary_key=True),
    Column("count", Integer, nullable=False, default=0),
    Column("stars_sum", Integer, nullable=False, default=0),
    Column("stars_4_5", Integer, nullable=False, default=0),
    *(Column(f"{code.lower()}_sum", Integer, nullable=False, default=0) for code in ELEMENTS),
    *(Column(f"{code.lower()}_count", Integer, nullable=False, default=0) for code in ELEMENTS),
)

#: The catalogue copy kept from ``agency_registered`` events: names for the leaderboard, no RPC.
agencies = Table(
    "agencies",
    metadata,
    Column("agency_id", String(36), primary_key=True),
    Column("code", String(32), nullable=False),
    Column("name", String(200), nullable=False),
)

complaints = Table(
    "complaints",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("rating_id", String(36), nullable=False, unique=True),
    Column("ticket_id", String(36), nullable=False),
    Column("agency_id", String(36), nullable=False),
    Column("service_id", String(36), nullable=False),
    Column("reason", String(16), nullable=False),
    Column("stars", Integer, nullable=False),
    Column("comment", Text, nullable=True),
    Column("status", String(16), nullable=False),
    Column("disputed", Boolean, nullable=False, default=False),
    Column("opened_at", UtcDateTime(), nullable=False),
    Column("first_response_due", UtcDateTime(), nullable=False),
    Column("resolution_due", UtcDateTime(), nullable=False),
    Column("responded_at", UtcDateTime(), nullable=True),
    Column("resolved_at", UtcDateTime(), nullable=True),
    Column("disputed_at", UtcDateTime(), nullable=True),
    Column("escalated_at", UtcDateTime(), nullable=True),
    Column("escalated_for", String(16), nullable=True),
    Index("ix_complaints_agency_opened", "agency_id", "opened_at", "id"),
    Index("ix_complaints_status", "status"),
)

complaint_responses = Table(
    "complaint_responses",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("complaint_id", String(36), nullable=False, index=True),
    Column("message", Text, nullable=False),
    Column("resolves", Boolean, nullable=False, default=False),
    Column("responder_key_id", String(64), nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
)

outbox, processed_events = add_chassis_tables(metadata)

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
    text,
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
    # local opening periods [["08:00", "12:00"], ["13:00", "15:00"]]; null = no booking hours
    Column("opening_hours", JSON, nullable=True),
    # booking rules {slot_minutes, capacity, daily_quota, early_minutes, late_minutes}; null = none
    Column("booking", JSON, nullable=True),
    Column("updated_at", UtcDateTime(), nullable=True),
    Column("unplugged_at", UtcDateTime(), nullable=True),
    # +1 on every change, carried by the catalogue events so copies apply them in order
    Column("version", Integer, nullable=False, default=1, server_default="1"),
    # the payment service's latest verdict for this service (payment_terms_set): the catalogue
    # version it is for, and whether a completion then needs paying. Its fact, kept to route
    # completions (ticket_completed.free); NULL until payment has sent it
    Column("payment_terms_version", Integer, nullable=True),
    Column("payment_required", Boolean, nullable=True),
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
    Column("updated_at", UtcDateTime(), nullable=True),
)

ticket_sequences = Table(
    "ticket_sequences",
    metadata,
    Column("prefix", String(3), primary_key=True),
    Column("day", Date, primary_key=True),
    Column("last_seq", Integer, nullable=False),
)

# The classes of a waiting line, written as the partial indexes' conditions; the queries reading
# the heads repeat them literally (usecases.tickets), which lets the planner use them.
WAITING_BOOKED = "status = 'waiting' AND booked_slot_start IS NOT NULL"
WAITING_PRIORITY = "status = 'waiting' AND booked_slot_start IS NULL AND priority IS NOT NULL"
WAITING_REGULAR = "status = 'waiting' AND booked_slot_start IS NULL AND priority IS NULL"
LINE_ORDER = ("service_id", "day", "queued_at", "id")

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
    Column("booking_id", String(36), nullable=True),
    Column("booked_slot_start", UtcDateTime(), nullable=True),
    Column("transferred_from", String(36), nullable=True),
    Column("transferred_to", String(36), nullable=True),
    Column("sla_minutes", Integer, nullable=True),
    Column("sla_deadline", UtcDateTime(), nullable=True),
    Column("sla_breached_at", UtcDateTime(), nullable=True),
    Column("end_reason", String(200), nullable=True),
    # a keyed take-ticket's request (Idempotency-Key, scope and body, hashed by the gateway):
    # the same request taken over by a retry returns this ticket instead of issuing another
    Column("request_key", String(64), nullable=True),
    UniqueConstraint("day", "number", name="uq_tickets_day_number"),
    Index("ix_tickets_request_key", "request_key", unique=True),
    # today's line of one service: take-ticket (position) and call-next read only this range
    Index("ix_tickets_line", "service_id", "status", "day", "queued_at"),
    # the heads of each class of the line, in calling order (partial: waiting tickets only, so
    # small whatever the history): call-next reads ten of each, however long the line is
    *(
        Index(
            name,
            *columns,
            postgresql_where=text(condition),
            sqlite_where=text(condition),
        )
        for name, columns, condition in (
            (
                "ix_tickets_heads_booked",
                ("service_id", "day", "booked_slot_start", "queued_at", "id"),
                WAITING_BOOKED,
            ),
            ("ix_tickets_heads_priority", LINE_ORDER, WAITING_PRIORITY),
            ("ix_tickets_heads_regular", LINE_ORDER, WAITING_REGULAR),
        )
    ),
    # the SLA timer reads open tickets past their deadline: bounded by the open ones
    Index("ix_tickets_sla", "status", "sla_deadline"),
    # recent serving times of a service (ETA): the last N completions by index order
    Index("ix_tickets_completed", "service_id", "completed_at"),
    # display and stats: one day's tickets (of one agency)
    Index("ix_tickets_day_status", "day", "status"),
    Index("ix_tickets_day_agency", "day", "agency_id"),
)

calls = Table(
    "calls",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("ticket_id", String(36), nullable=False),
    Column("counter_id", String(36), nullable=False),
    Column("agency_id", String(36), nullable=False),
    Column("number", String(16), nullable=False),
    Column("kind", String(8), nullable=False),  # call | recall
    Column("day", Date, nullable=False),
    Column("called_at", UtcDateTime(), nullable=False),
    Column("announcement", String(200), nullable=False),
    # an officer's keyed press (call-next, call, recall): the same press never calls twice
    Column("request_key", String(64), nullable=True),
    Index("ix_calls_day_called", "day", "called_at"),
    Index("ix_calls_request_key", "request_key", unique=True),
)

bookings = Table(
    "bookings",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("agency_id", String(36), nullable=False),
    Column("service_id", String(36), nullable=False),
    Column("day", Date, nullable=False),
    Column("slot_start", UtcDateTime(), nullable=False),
    Column("slot_end", UtcDateTime(), nullable=False),
    # booked -> checked_in | cancelled | no_show | late
    Column("status", String(16), nullable=False),
    Column("nik_hash", String(64), nullable=False),
    Column("nik_last4", String(4), nullable=False),
    Column("phone", String(16), nullable=True),
    Column("priority", String(16), nullable=True),
    Column("checkin_opens_at", UtcDateTime(), nullable=False),
    Column("checkin_closes_at", UtcDateTime(), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("ended_at", UtcDateTime(), nullable=True),
    Column("ticket_id", String(36), nullable=True),
    # a keyed booking's request (Idempotency-Key, scope and body, hashed by the gateway): the
    # same request taken over by a retry returns this booking instead of "already booked"
    Column("request_key", String(64), nullable=True),
    Index("ix_bookings_request_key", "request_key", unique=True),
    # the no-show timer reads only bookings still open past their window
    Index("ix_bookings_due", "status", "checkin_closes_at"),
    Index("ix_bookings_nik", "nik_hash", "status"),
    Index("ix_bookings_service_day", "service_id", "day"),
)

service_day_counts = Table(
    "service_day_counts",
    metadata,
    Column("service_id", String(36), primary_key=True),
    Column("day", Date, primary_key=True),
    Column("issued", Integer, nullable=False, server_default="0"),
    Column("booked", Integer, nullable=False, server_default="0"),
)
"""Tickets issued and bookings made per service and day: quotas are checked by an atomic
increment here, so two processes can never both take the last place."""

slot_counts = Table(
    "slot_counts",
    metadata,
    Column("service_id", String(36), primary_key=True),
    Column("slot_start", UtcDateTime(), primary_key=True),
    Column("booked", Integer, nullable=False, server_default="0"),
)

add_chassis_tables(metadata)

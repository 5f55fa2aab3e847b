"""The payment service's database: its copy of the catalogue, invoices and their charge attempts,
notifications, refunds, the double-entry journal and the offline simulator's own book."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
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
    Column("version", Integer, nullable=True),  # the queue's; None: from an event before versions
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
    Column("ewallet_ref", String(64), nullable=True),
    Column("checkout_url", String(255), nullable=True),
    # the current attempt's number; the method columns above copy that attempt's charge
    Column("method_attempt", Integer, nullable=False, default=1, server_default="1"),
    Column("paid_attempt", Integer, nullable=True),  # the attempt whose money paid the invoice
    Column("expires_at", UtcDateTime(), nullable=False),
    Column("paid_at", UtcDateTime(), nullable=True),
    Column("paid_amount_idr", Integer, nullable=True),
    Column("closed_at", UtcDateTime(), nullable=True),
    Column("refunded_idr", Integer, nullable=False, default=0),
    Column("flag", String(32), nullable=True),
    Column("receipt_number", String(32), nullable=True, unique=True),
    # SHA-256 (hex) of the ticket's access code, from ticket_completed (domain.access); NULL for
    # an invoice opened before it was sent: the gateway then asks the queue who may read it
    Column("access_digest", String(64), nullable=True),
    # who served the visit and when, from ticket_completed: payment_succeeded carries them, so
    # the rating service invites a paid visit from that one fact (decision 0015); NULL for an
    # invoice opened before they were kept
    Column("counter_id", String(36), nullable=True),
    Column("officer_id", String(36), nullable=True),
    Column("completed_at", UtcDateTime(), nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)

charge_attempts = Table(
    "charge_attempts",
    metadata,
    # the attempt's id is also the provider's idempotency key for its charge
    Column("id", String(36), primary_key=True),
    Column("payment_id", String(36), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("order_id", String(64), nullable=False, unique=True),
    Column("provider", String(16), nullable=False),
    Column("method", String(16), nullable=True),  # NULL: an attempt made before migration 0008
    Column("status", String(16), nullable=False),
    Column("amount_idr", Integer, nullable=False),
    Column("provider_ref", String(64), nullable=True),
    Column("qris_payload", Text, nullable=True),
    Column("va_number", String(32), nullable=True),
    Column("ewallet_ref", String(64), nullable=True),
    Column("checkout_url", String(255), nullable=True),
    Column("expires_at", UtcDateTime(), nullable=True),
    Column("paid_at", UtcDateTime(), nullable=True),
    Column("paid_amount_idr", Integer, nullable=True),
    # money on this attempt that is not the invoice's payment (held in overpayment suspense)
    Column("overpaid_idr", Integer, nullable=False, default=0, server_default="0"),
    Column("overpaid_refunded_idr", Integer, nullable=False, default=0, server_default="0"),
    # the charge as a durable work item: tries so far, when the next may run, why the last failed
    Column("tries", Integer, nullable=False, default=0, server_default="0"),
    Column("next_try_at", UtcDateTime(), nullable=True),
    Column("last_error", String(200), nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    UniqueConstraint("payment_id", "attempt", name="uq_charge_attempts_payment_attempt"),
    Index("ix_charge_attempts_due", "status", "next_try_at"),
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
    # the verified fact's digest (Notification.key): a replay counts here instead of a new row;
    # NULL only on rows stored before migration 0004
    Column("notice_key", String(64), nullable=True),
    Column("replays", Integer, nullable=False, default=0, server_default="0"),
    Column("last_received_at", UtcDateTime(), nullable=True),
    Index("uq_provider_notifications_key", "provider", "notice_key", unique=True),
)

receipt_sequences = Table(
    "receipt_sequences",
    metadata,
    Column("day", Date, primary_key=True),
    Column("last_seq", Integer, nullable=False),
)

refunds = Table(
    "refunds",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("payment_id", String(36), nullable=False, index=True),
    Column("agency_id", String(36), nullable=False, index=True),
    Column("amount_idr", Integer, nullable=False),
    Column("reason", String(200), nullable=True),
    # the client's Idempotency-Key, unique per API key that sent it (``key_scope``): another
    # agency's key of the same spelling is another refund; the provider gets ``provider_key``
    Column("key_scope", String(64), nullable=False, server_default=""),
    Column("idempotency_key", String(200), nullable=False),
    Column("request_hash", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("provider_ref", String(64), nullable=True),
    Column("actor_key_id", String(64), nullable=True),
    # set when the refund returned an overpayment (money on that attempt), not the payment
    Column("overpayment_attempt", Integer, nullable=True),
    Column("created_at", UtcDateTime(), nullable=False, index=True),
    UniqueConstraint("key_scope", "idempotency_key", name="uq_refunds_scope_key"),
)

journal_lines = Table(
    "journal_lines",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("entry_id", String(36), nullable=False, index=True),
    Column("account", String(80), nullable=False, index=True),
    Column("agency_id", String(36), nullable=False, index=True),
    Column("debit_idr", Integer, nullable=False),
    Column("credit_idr", Integer, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("reference", String(36), nullable=False),
    Column("memo", String(120), nullable=False),
    Column("occurred_at", UtcDateTime(), nullable=False),
)

simulator_book = Table(
    "simulator_transactions",
    metadata,
    Column("order_id", String(64), primary_key=True),  # one per charge attempt
    # the charge's idempotency key: a retried charge with it answers the same order
    Column("idempotency_key", String(64), nullable=True, unique=True),
    Column("status", String(24), nullable=False),
    Column("amount_idr", Integer, nullable=False),
    Column("refunded_idr", Integer, nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)

add_chassis_tables(metadata)

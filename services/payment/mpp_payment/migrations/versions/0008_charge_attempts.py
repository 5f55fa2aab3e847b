"""charge attempts: one row per provider charge; overpayments; the simulator's idempotency key

Existing invoices get their attempts: the current one (``method_attempt``) with the invoice's
method data and a status from the invoice's, and, for earlier attempts, rows whose method was
not recorded (NULL) marked superseded. The simulator's book, keyed by payment id before, is
re-keyed by the current attempt's order id (``<payment_id>-<attempt>``).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 17:30:00
"""

import uuid

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

MONEY = ("paid", "partially_refunded", "refunded")
CLOSED = ("expired", "cancelled", "failed")
Time = sa.DateTime(timezone=True)


def upgrade() -> None:
    attempts = op.create_table(
        "charge_attempts",
        sa.Column("id", sa.String(length=36), primary_key=True),
        sa.Column("payment_id", sa.String(length=36), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.String(length=64), nullable=False, unique=True),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("amount_idr", sa.Integer(), nullable=False),
        sa.Column("provider_ref", sa.String(length=64), nullable=True),
        sa.Column("qris_payload", sa.Text(), nullable=True),
        sa.Column("va_number", sa.String(length=32), nullable=True),
        sa.Column("ewallet_ref", sa.String(length=64), nullable=True),
        sa.Column("checkout_url", sa.String(length=255), nullable=True),
        sa.Column("expires_at", Time, nullable=True),
        sa.Column("paid_at", Time, nullable=True),
        sa.Column("paid_amount_idr", sa.Integer(), nullable=True),
        sa.Column("overpaid_idr", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("overpaid_refunded_idr", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("tries", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("next_try_at", Time, nullable=True),
        sa.Column("last_error", sa.String(length=200), nullable=True),
        sa.Column("created_at", Time, nullable=False),
        sa.Column("updated_at", Time, nullable=False),
        sa.UniqueConstraint("payment_id", "attempt", name="uq_charge_attempts_payment_attempt"),
    )
    op.create_index("ix_charge_attempts_due", "charge_attempts", ["status", "next_try_at"])
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("paid_attempt", sa.Integer(), nullable=True))
    with op.batch_alter_table("refunds", schema=None) as batch_op:
        batch_op.add_column(sa.Column("overpayment_attempt", sa.Integer(), nullable=True))
    with op.batch_alter_table("simulator_transactions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("idempotency_key", sa.String(length=64), nullable=True))
        batch_op.create_unique_constraint(
            "uq_simulator_transactions_idempotency_key", ["idempotency_key"]
        )
    _migrate_rows(attempts)


def _migrate_rows(attempts: sa.Table) -> None:
    bind = op.get_bind()
    meta = sa.MetaData()
    payments = sa.Table("payments", meta, autoload_with=bind)
    book = sa.Table("simulator_transactions", meta, autoload_with=bind)
    for p in bind.execute(sa.select(payments)).mappings().all():
        current = p["method_attempt"] or 1
        for number in range(1, current + 1):
            row = {
                "id": str(uuid.uuid4()),
                "payment_id": p["id"],
                "attempt": number,
                "order_id": f"{p['id']}-{number}",
                "provider": p["provider"],
                "method": None,
                "status": "superseded",
                "amount_idr": p["amount_idr"],
                "created_at": p["created_at"],
                "updated_at": p["updated_at"],
            }
            if number == current:
                status = p["status"]
                row.update(
                    method=p["method"],
                    status="paid" if status in MONEY else status if status in CLOSED else "live",
                    provider_ref=p["provider_ref"],
                    qris_payload=p["qris_payload"],
                    va_number=p["va_number"],
                    ewallet_ref=p["ewallet_ref"],
                    checkout_url=p["checkout_url"],
                    expires_at=p["expires_at"],
                    paid_at=p["paid_at"],
                    paid_amount_idr=p["paid_amount_idr"],
                )
            bind.execute(sa.insert(attempts).values(**row))
        if p["status"] in MONEY:
            bind.execute(
                sa.update(payments).where(payments.c.id == p["id"]).values(paid_attempt=current)
            )
        if p["provider"] == "simulator":
            bind.execute(
                sa.update(book)
                .where(book.c.order_id == p["id"])
                .values(order_id=f"{p['id']}-{current}")
            )


def downgrade() -> None:
    bind = op.get_bind()
    meta = sa.MetaData()
    book = sa.Table("simulator_transactions", meta, autoload_with=bind)
    for order in bind.execute(sa.select(book.c.order_id)).scalars().all():
        if len(order) > 36:  # back to one row per payment: the latest attempt's
            bind.execute(sa.delete(book).where(book.c.order_id == order[:36]))
            bind.execute(
                sa.update(book).where(book.c.order_id == order).values(order_id=order[:36])
            )
    with op.batch_alter_table("simulator_transactions", schema=None) as batch_op:
        batch_op.drop_constraint("uq_simulator_transactions_idempotency_key", type_="unique")
        batch_op.drop_column("idempotency_key")
    with op.batch_alter_table("refunds", schema=None) as batch_op:
        batch_op.drop_column("overpayment_attempt")
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.drop_column("paid_attempt")
    op.drop_index("ix_charge_attempts_due", table_name="charge_attempts")
    op.drop_table("charge_attempts")

"""payments: who served the visit and when, so payment_succeeded carries the completion

The rating service then invites a paid visit from payment_succeeded alone, and is no longer
woken by the completions of paid tickets (decision 0015).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 22:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # nullable, no default: invoices opened before keep NULL (the rating service then waits for
    # the ticket's completion, which it still received when they were opened)
    op.add_column("payments", sa.Column("counter_id", sa.String(36), nullable=True))
    op.add_column("payments", sa.Column("officer_id", sa.String(36), nullable=True))
    op.add_column("payments", sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("payments") as batch_op:
        batch_op.drop_column("completed_at")
        batch_op.drop_column("officer_id")
        batch_op.drop_column("counter_id")

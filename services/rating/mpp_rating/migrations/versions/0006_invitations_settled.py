"""invitations: ``paid`` becomes ``settled`` and the fee goes (the payment service decides)

Whether a ticket needs paying is the payment service's fact alone: an invitation waits for its
``payment_succeeded`` or ``payment_not_required``, both recorded as ``settled``. Every existing
row keeps its meaning (a paid ticket is settled; an unpaid one is not). The fee the queue's
event carried is no longer read, so it is no longer kept.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05 17:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("invitations") as batch:
        batch.alter_column("paid", new_column_name="settled")
        batch.drop_column("fee_idr")


def downgrade() -> None:
    with op.batch_alter_table("invitations") as batch:
        batch.alter_column("settled", new_column_name="paid")
        batch.add_column(sa.Column("fee_idr", sa.Integer(), nullable=True))

"""payments: the digest of the ticket's access code, so an invoice is read in one RPC

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 06:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # nullable, no default: invoices opened before keep NULL (the gateway asks the queue)
    op.add_column("payments", sa.Column("access_digest", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("payments") as batch_op:
        batch_op.drop_column("access_digest")

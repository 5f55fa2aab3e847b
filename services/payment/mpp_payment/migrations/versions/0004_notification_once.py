"""provider notifications: stored once per verified fact, replays counted on that row

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05 10:45:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("provider_notifications", schema=None) as batch_op:
        batch_op.add_column(sa.Column("notice_key", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("replays", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(
            sa.Column("last_received_at", sa.DateTime(timezone=True), nullable=True)
        )
        # rows stored before this revision keep a NULL key: NULLs never collide in a unique index
        batch_op.create_index(
            "uq_provider_notifications_key", ["provider", "notice_key"], unique=True
        )


def downgrade() -> None:
    with op.batch_alter_table("provider_notifications", schema=None) as batch_op:
        batch_op.drop_index("uq_provider_notifications_key")
        batch_op.drop_column("last_received_at")
        batch_op.drop_column("replays")
        batch_op.drop_column("notice_key")

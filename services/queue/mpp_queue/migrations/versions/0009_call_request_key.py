"""calls: the request key of an officer's keyed press, unique, so a retried press calls once

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 12:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("calls", sa.Column("request_key", sa.String(64), nullable=True))
    # NULLs are distinct in both PostgreSQL and SQLite: only keyed presses are constrained
    op.create_index("ix_calls_request_key", "calls", ["request_key"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_calls_request_key", table_name="calls")
    with op.batch_alter_table("calls") as batch_op:
        batch_op.drop_column("request_key")

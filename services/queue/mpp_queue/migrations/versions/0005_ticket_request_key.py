"""tickets: the request key a kiosk's Idempotency-Key gives a take-ticket, unique

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 14:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("tickets", sa.Column("request_key", sa.String(64), nullable=True))
    # NULLs are distinct in both PostgreSQL and SQLite: only keyed takes are constrained
    op.create_index("ix_tickets_request_key", "tickets", ["request_key"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_tickets_request_key", table_name="tickets")
    op.drop_column("tickets", "request_key")

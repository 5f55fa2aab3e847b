"""bookings: the request key a citizen app's Idempotency-Key gives a booking, unique

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 17:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("bookings", sa.Column("request_key", sa.String(64), nullable=True))
    # NULLs are distinct in both PostgreSQL and SQLite: only keyed bookings are constrained
    op.create_index("ix_bookings_request_key", "bookings", ["request_key"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_bookings_request_key", table_name="bookings")
    op.drop_column("bookings", "request_key")

"""line heads: partial indexes of the waiting tickets of each class, in calling order

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 10:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

WAITING_BOOKED = "status = 'waiting' AND booked_slot_start IS NOT NULL"
WAITING_PRIORITY = "status = 'waiting' AND booked_slot_start IS NULL AND priority IS NOT NULL"
WAITING_REGULAR = "status = 'waiting' AND booked_slot_start IS NULL AND priority IS NULL"
LINE_ORDER = ["service_id", "day", "queued_at", "id"]

INDEXES = (
    (
        "ix_tickets_heads_booked",
        ["service_id", "day", "booked_slot_start", "queued_at", "id"],
        WAITING_BOOKED,
    ),
    ("ix_tickets_heads_priority", LINE_ORDER, WAITING_PRIORITY),
    ("ix_tickets_heads_regular", LINE_ORDER, WAITING_REGULAR),
)


def upgrade() -> None:
    for name, columns, condition in INDEXES:
        op.create_index(
            name,
            "tickets",
            columns,
            unique=False,
            postgresql_where=sa.text(condition),
            sqlite_where=sa.text(condition),
        )


def downgrade() -> None:
    for name, _, _ in INDEXES:
        op.drop_index(name, table_name="tickets")

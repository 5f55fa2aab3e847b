"""outbox: a partial index of the parked rows, which the relay counts every second

Without it the count of its parked-events gauge read every row the outbox keeps (a week of
sent events). Each count of the relay's two gauges now reads its own partial index.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 20:10:00
"""

from alembic import op

from mpp_chassis.tables import create_parked_index, drop_parked_index

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_parked_index(op)


def downgrade() -> None:
    drop_parked_index(op)

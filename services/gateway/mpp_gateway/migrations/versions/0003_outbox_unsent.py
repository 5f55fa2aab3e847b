"""outbox: a partial index of the unsent rows, in publication order

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 12:00:00
"""

from alembic import op

from mpp_chassis.tables import create_unsent_index, drop_unsent_index

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_unsent_index(op)


def downgrade() -> None:
    drop_unsent_index(op)

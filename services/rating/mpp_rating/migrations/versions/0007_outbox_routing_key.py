"""outbox: a routing key apart from the type (NULL: the type), as every service's outbox

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05 23:50:00
"""

from alembic import op

from mpp_chassis.tables import add_routing_key, drop_routing_key

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    add_routing_key(op)


def downgrade() -> None:
    drop_routing_key(op)

"""services: a version, +1 on every change, carried by service_plugged / service_updated

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05 12:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "services", sa.Column("version", sa.Integer(), nullable=False, server_default="1")
    )


def downgrade() -> None:
    with op.batch_alter_table("services") as batch_op:
        batch_op.drop_column("version")

"""catalogue copy: the queue's service version, so an older event never overwrites a newer one

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05 12:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("catalogue_services", sa.Column("version", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("catalogue_services") as batch_op:
        batch_op.drop_column("version")

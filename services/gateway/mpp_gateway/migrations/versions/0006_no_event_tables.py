"""the gateway emits and handles no events: its outbox and processed_events go

The gateway only answers HTTP and calls the services; the boards' live calls reach it as
broadcast events it does not store. The chassis's event tables, which every service database
used to carry, were never written here.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05 18:40:00
"""

from alembic import op
from sqlalchemy import MetaData

from mpp_chassis.tables import add_chassis_tables

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_table("processed_events")  # its indexes go with it
    op.drop_table("outbox")


def downgrade() -> None:
    metadata = MetaData()
    add_chassis_tables(metadata)
    metadata.create_all(op.get_bind())

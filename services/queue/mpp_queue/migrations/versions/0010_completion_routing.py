"""outbox: a routing key apart from the type; services: the payment service's latest terms

A completion of a service that payment's terms say is free, for the catalogue version in force,
is published as ``ticket_completed.free`` (docs/decisions/0013-free-completions-routing.md).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05 23:50:00
"""

import sqlalchemy as sa
from alembic import op

from mpp_chassis.tables import add_routing_key, drop_routing_key

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    add_routing_key(op)
    # NULL until the payment service's first payment_terms_set for the service: routed as today
    op.add_column("services", sa.Column("payment_terms_version", sa.Integer, nullable=True))
    op.add_column("services", sa.Column("payment_required", sa.Boolean, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("services") as batch_op:
        batch_op.drop_column("payment_required")
        batch_op.drop_column("payment_terms_version")
    drop_routing_key(op)

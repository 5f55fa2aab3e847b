"""refunds: an Idempotency-Key is unique per API key, not across the whole mall; up to 200 chars

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05 12:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# the name each database gave 0002's unnamed UNIQUE (idempotency_key)
_OLD_UNIQUE = {"postgresql": "refunds_idempotency_key_key", "sqlite": "uq_refunds_idempotency_key"}
# SQLite's constraint has no name: batch mode names it by this convention when it reflects it
_CONVENTION = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    with op.batch_alter_table("refunds", naming_convention=_CONVENTION) as batch_op:
        batch_op.drop_constraint(_OLD_UNIQUE.get(dialect, _OLD_UNIQUE["sqlite"]), type_="unique")
        # rows before this revision were unique across the mall: one scope holds them all
        batch_op.add_column(
            sa.Column("key_scope", sa.String(length=64), nullable=False, server_default="")
        )
        batch_op.alter_column(
            "idempotency_key", type_=sa.String(length=200), existing_nullable=False
        )
        batch_op.create_unique_constraint("uq_refunds_scope_key", ["key_scope", "idempotency_key"])


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    with op.batch_alter_table("refunds") as batch_op:
        batch_op.drop_constraint("uq_refunds_scope_key", type_="unique")
        batch_op.alter_column(
            "idempotency_key", type_=sa.String(length=128), existing_nullable=False
        )
        batch_op.drop_column("key_scope")
        batch_op.create_unique_constraint(
            _OLD_UNIQUE.get(dialect, _OLD_UNIQUE["sqlite"]), ["idempotency_key"]
        )

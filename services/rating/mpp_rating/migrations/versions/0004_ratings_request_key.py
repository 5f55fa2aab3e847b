"""ratings: the request key a client's Idempotency-Key gives a submission, unique

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 17:20:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("ratings", sa.Column("request_key", sa.String(64), nullable=True))
    # NULLs are distinct in both PostgreSQL and SQLite: only keyed submissions are constrained
    op.create_index("ix_ratings_request_key", "ratings", ["request_key"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_ratings_request_key", table_name="ratings")
    op.drop_column("ratings", "request_key")

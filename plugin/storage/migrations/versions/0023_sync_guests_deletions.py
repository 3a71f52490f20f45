"""guests and deletions from the platform (customers.is_guest/deleted_at, products.deleted_at), and
where an interrupted first sync resumes (sync_states.backfill_started_at/backfill_until)

Revision ID: 0023
Revises: 0021
Create Date: 2026-12-02 04:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0023"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # existing rows: members (not guests), nothing deleted, no backfill in progress
    op.add_column("customers", sa.Column("is_guest", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column("customers", sa.Column("deleted_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
    op.add_column("products", sa.Column("deleted_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
    op.add_column("sync_states", sa.Column("backfill_started_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
    op.add_column("sync_states", sa.Column("backfill_until", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))


def downgrade() -> None:
    op.drop_column("sync_states", "backfill_until")
    op.drop_column("sync_states", "backfill_started_at")
    op.drop_column("products", "deleted_at")
    op.drop_column("customers", "deleted_at")
    op.drop_column("customers", "is_guest")

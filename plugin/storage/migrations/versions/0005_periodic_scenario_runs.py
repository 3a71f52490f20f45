"""periodic scenario runs

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 09:19:07.413932
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "scenario_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("shop_id", sa.Integer(), nullable=False),
        sa.Column("scenario_key", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("period", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("finished_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["shop_id"],
            ["shops.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("shop_id", "scenario_key", "period"),
    )


def downgrade() -> None:
    op.drop_table("scenario_runs")

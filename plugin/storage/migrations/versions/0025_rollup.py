"""the dashboard's rollups: counters per shop, scenario, step and local day, and held-back rows per
reason; backfilled from the existing rows

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-02 05:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlmodel import Session, select

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None

COUNTERS = ("sent", "opened", "clicked", "conversions", "revenue", "treated_bought", "control", "control_bought")


def upgrade() -> None:
    op.create_table(
        "rollup_days",
        sa.Column("shop_id", sa.Integer(), nullable=False),
        sa.Column("scenario_key", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("step", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        *(sa.Column(name, sa.Integer(), nullable=False) for name in COUNTERS),
        sa.PrimaryKeyConstraint("shop_id", "scenario_key", "step", "day"),
    )
    op.create_table(
        "rollup_held",
        sa.Column("shop_id", sa.Integer(), nullable=False),
        sa.Column("scenario_key", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("shop_id", "scenario_key", "day", "reason"),
    )
    op.create_table(
        "rollup_marks",
        sa.Column("shop_id", sa.Integer(), nullable=False),
        sa.Column("orders_seen", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("shop_id"),
    )
    backfill(op.get_bind())


def backfill(connection: sa.Connection) -> None:
    """Every shop's rollup from its rows, with the same recomputation the tests compare against."""
    from sqlalchemy.orm import load_only

    from plugin.measurement.rollup import rebuild
    from plugin.storage.models import Shop

    with Session(bind=connection) as session:
        # Only the columns the rebuild reads: later revisions add columns this one's schema lacks.
        for shop in session.execute(select(Shop).options(load_only(Shop.id, Shop.timezone))).scalars().all():
            rebuild(session, shop)
            session.flush()


def downgrade() -> None:
    op.drop_table("rollup_marks")
    op.drop_table("rollup_held")
    op.drop_table("rollup_days")

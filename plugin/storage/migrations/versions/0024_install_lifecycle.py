"""install lifecycle: why an install stopped, its script tags per scope with their integrity, and
orders reported by the thanks page

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-02 04:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("shops", sa.Column("state_reason", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False, server_default=""))
    op.add_column("shops", sa.Column("points_source", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False, server_default=""))
    op.add_column("shops", sa.Column("points_expiry_from_platform", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column("shops", sa.Column("storefront_enabled", sa.Boolean(), nullable=False, server_default=sa.true()))
    # Shops installed before this revision get the point source at their next sync (plugin.install.lifecycle).
    op.create_table(
        "script_tags",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("shop_id", sa.Integer(), nullable=False),
        sa.Column("scope", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("tag_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("integrity", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["shop_id"], ["shops.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("shop_id", "scope"),
    )
    # Tags placed before this revision: their integrity is unknown, so the next sync updates them.
    op.execute("INSERT INTO script_tags (shop_id, scope, tag_id, integrity, updated_at) "
               "SELECT id, 'shop', script_tag_id, '', created_at FROM shops WHERE script_tag_id <> ''")
    op.create_table(
        "thanks_page_orders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("shop_id", sa.Integer(), nullable=False),
        sa.Column("order_external_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("visitor_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("order_id", sa.Integer(), nullable=True),
        sa.Column("reported_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("matched_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["shop_id"], ["shops.id"]),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"]),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("shop_id", "order_external_id"),
    )


def downgrade() -> None:
    op.drop_table("thanks_page_orders")
    op.drop_table("script_tags")
    op.drop_column("shops", "storefront_enabled")
    op.drop_column("shops", "points_expiry_from_platform")
    op.drop_column("shops", "points_source")
    op.drop_column("shops", "state_reason")

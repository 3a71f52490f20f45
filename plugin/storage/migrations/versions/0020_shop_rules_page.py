"""the rules page: a default holdout share, a sender name and the point expiry months per shop;
product-code grouping rules by pattern or list (replacing the one-code-per-row table, whose rows
become list rules); the platform's own group of each product, kept apart from the one in use

Revision ID: 0020
Revises: 0018
Create Date: 2026-12-03 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0020"
down_revision = "0018"
branch_labels = None
depends_on = None

SHOP_COLUMNS = [
    sa.Column("default_holdout_percent", sa.Integer(), nullable=False, server_default="10"),
    sa.Column("sender_name", sa.String(length=100), nullable=False, server_default=""),
    sa.Column("points_expiry_months", sa.Integer(), nullable=False, server_default="12"),
]


# Plain ALTER TABLE, not batch mode (see 0015): other tables' foreign keys point at `shops`.


def upgrade() -> None:
    for column in SHOP_COLUMNS:
        op.add_column("shops", column)
    op.add_column("products", sa.Column("platform_group_code", sa.String(length=128), nullable=False, server_default=""))
    op.execute("UPDATE products SET platform_group_code = group_code")
    op.create_table(
        "grouping_rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("shop_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("action", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("codes", sqlmodel.sql.sqltypes.AutoString(length=4000), nullable=False),
        sa.Column("group_name", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["shop_id"], ["shops.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_grouping_rules_shop", "grouping_rules", ["shop_id", "position"], unique=False)
    # Each old rule (one code → one group) becomes a list rule with that one code.
    op.execute("INSERT INTO grouping_rules (shop_id, position, action, codes, group_name, created_at) "
               "SELECT shop_id, id, 'merge', product_code, group_code, CURRENT_TIMESTAMP FROM product_group_rules")
    op.drop_table("product_group_rules")


def downgrade() -> None:
    op.create_table(
        "product_group_rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("shop_id", sa.Integer(), nullable=False),
        sa.Column("product_code", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("group_code", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.ForeignKeyConstraint(["shop_id"], ["shops.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("shop_id", "product_code"),
    )
    op.drop_index("ix_grouping_rules_shop", table_name="grouping_rules")
    op.drop_table("grouping_rules")
    op.execute("UPDATE products SET group_code = platform_group_code")
    op.drop_column("products", "platform_group_code")
    for column in reversed(SHOP_COLUMNS):
        op.drop_column("shops", column.name)

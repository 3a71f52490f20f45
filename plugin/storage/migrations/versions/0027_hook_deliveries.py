"""platform hooks applied by a worker (deduplicated per shop and delivery), customers' data
exports, and the merchant-named point fields of platforms without native points

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-02 07:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "hook_deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("shop_id", sa.Integer(), nullable=False),
        sa.Column("delivery_key", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("topic", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("triggered_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("received_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("applied_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("outcome", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.ForeignKeyConstraint(["shop_id"], ["shops.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("shop_id", "delivery_key"),
    )
    op.create_index("ix_hook_deliveries_pending", "hook_deliveries", ["applied_at", "received_at"])
    op.create_table(
        "data_exports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("shop_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("customer_ref", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("request_ref", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("downloaded_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["shop_id"], ["shops.id"]),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_data_exports_shop", "data_exports", ["shop_id", "created_at"])
    op.create_table(
        "point_fields",
        sa.Column("shop_id", sa.Integer(), nullable=False),
        sa.Column("balance_field", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
        sa.Column("expiry_field", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["shop_id"], ["shops.id"]),
        sa.PrimaryKeyConstraint("shop_id"),
    )


def downgrade() -> None:
    op.drop_table("point_fields")
    op.drop_index("ix_data_exports_shop", table_name="data_exports")
    op.drop_table("data_exports")
    op.drop_index("ix_hook_deliveries_pending", table_name="hook_deliveries")
    op.drop_table("hook_deliveries")

"""scenario engine, consent records, conversions, product groups

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 08:25:53.255944
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "consent_records",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("shop_id", sa.Integer(), nullable=False),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("address", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("consented", sa.Boolean(), nullable=False),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("recorded_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["shop_id"],
            ["shops.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("consent_records", schema=None) as batch_op:
        batch_op.create_index("ix_consent_shop_address", ["shop_id", "channel", "address"], unique=False)

    op.create_table(
        "product_group_rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("shop_id", sa.Integer(), nullable=False),
        sa.Column("product_code", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("group_code", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.ForeignKeyConstraint(
            ["shop_id"],
            ["shops.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("shop_id", "product_code"),
    )
    op.create_table(
        "conversions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("shop_id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("scenario_key", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("revenue", sa.Integer(), nullable=False),
        sa.Column("ordered_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
        ),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.id"],
        ),
        sa.ForeignKeyConstraint(
            ["shop_id"],
            ["shops.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("order_id"),
    )
    with op.batch_alter_table("conversions", schema=None) as batch_op:
        batch_op.create_index("ix_conversions_shop_message", ["shop_id", "message_id"], unique=False)

    with op.batch_alter_table("carts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("revision", sa.Integer(), nullable=False, server_default="1"))

    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_order_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))

    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("context", sqlmodel.sql.sqltypes.AutoString(), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("decision", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False, server_default=""))
        batch_op.create_index("ix_messages_trigger", ["shop_id", "customer_id", "scenario_key", "trigger_key"], unique=False)

    with op.batch_alter_table("products", schema=None) as batch_op:
        batch_op.add_column(sa.Column("restocked_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("low_stock_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))

    with op.batch_alter_table("scenario_settings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("holdout_percent", sa.Integer(), nullable=False, server_default="10"))
        batch_op.add_column(sa.Column("note", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("scenario_settings", schema=None) as batch_op:
        batch_op.drop_column("note")
        batch_op.drop_column("holdout_percent")

    with op.batch_alter_table("products", schema=None) as batch_op:
        batch_op.drop_column("low_stock_at")
        batch_op.drop_column("restocked_at")

    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index("ix_messages_trigger")
        batch_op.drop_column("decision")
        batch_op.drop_column("context")

    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.drop_column("last_order_at")

    with op.batch_alter_table("carts", schema=None) as batch_op:
        batch_op.drop_column("revision")

    with op.batch_alter_table("conversions", schema=None) as batch_op:
        batch_op.drop_index("ix_conversions_shop_message")

    op.drop_table("conversions")
    op.drop_table("product_group_rules")
    with op.batch_alter_table("consent_records", schema=None) as batch_op:
        batch_op.drop_index("ix_consent_shop_address")

    op.drop_table("consent_records")

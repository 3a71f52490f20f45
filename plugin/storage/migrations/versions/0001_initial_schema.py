"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-23 07:54:05.295487
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "leases",
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("holder", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("expires_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "shops",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("external_id", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("domain", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("owner_email", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("sender_address", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("timezone", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("currency", sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
        sa.Column("locale", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("state_message", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("access_token_encrypted", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("scopes", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("event_key", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("installed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("uninstalled_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("platform", "external_id"),
    )
    with op.batch_alter_table("shops", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_shops_event_key"), ["event_key"], unique=False)

    op.create_table(
        "webhook_receipts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("delivery_key", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("topic", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("received_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("platform", "delivery_key"),
    )
    op.create_table(
        "customers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("shop_id", sa.Integer(), nullable=False),
        sa.Column("external_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("email", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("line_user_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("email_consent", sa.Boolean(), nullable=False),
        sa.Column("email_consent_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("line_consent", sa.Boolean(), nullable=False),
        sa.Column("points_balance", sa.Integer(), nullable=False),
        sa.Column("points_expire_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["shop_id"],
            ["shops.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("shop_id", "external_id"),
    )
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.create_index("ix_customers_shop_email", ["shop_id", "email"], unique=False)

    op.create_table(
        "products",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("shop_id", sa.Integer(), nullable=False),
        sa.Column("external_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("code", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("group_code", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("price", sa.Integer(), nullable=False),
        sa.Column("currency", sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
        sa.Column("stock", sa.Integer(), nullable=True),
        sa.Column("category", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("url", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
        sa.Column("image_url", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
        sa.Column("visible", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["shop_id"],
            ["shops.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("shop_id", "external_id"),
    )
    with op.batch_alter_table("products", schema=None) as batch_op:
        batch_op.create_index("ix_products_shop_group", ["shop_id", "group_code"], unique=False)

    op.create_table(
        "scenario_settings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("shop_id", sa.Integer(), nullable=False),
        sa.Column("scenario_key", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("delay_minutes", sa.Integer(), nullable=True),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("subject_template", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("body_template", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["shop_id"],
            ["shops.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("shop_id", "scenario_key"),
    )
    op.create_table(
        "suppressions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("shop_id", sa.Integer(), nullable=False),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("address", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["shop_id"],
            ["shops.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("shop_id", "channel", "address"),
    )
    op.create_table(
        "sync_states",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("shop_id", sa.Integer(), nullable=False),
        sa.Column("resource", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("cursor", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("last_run_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("last_count", sa.Integer(), nullable=False),
        sa.Column("last_error", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
        sa.ForeignKeyConstraint(
            ["shop_id"],
            ["shops.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("shop_id", "resource"),
    )
    op.create_table(
        "browse_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("shop_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("occurred_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
        ),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["products.id"],
        ),
        sa.ForeignKeyConstraint(
            ["shop_id"],
            ["shops.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("browse_events", schema=None) as batch_op:
        batch_op.create_index("ix_browse_shop_customer", ["shop_id", "customer_id"], unique=False)
        batch_op.create_index("ix_browse_shop_time", ["shop_id", "occurred_at"], unique=False)

    op.create_table(
        "carts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("shop_id", sa.Integer(), nullable=False),
        sa.Column("external_key", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("recovery_url", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("currency", sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
        ),
        sa.ForeignKeyConstraint(
            ["shop_id"],
            ["shops.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("shop_id", "external_key"),
    )
    with op.batch_alter_table("carts", schema=None) as batch_op:
        batch_op.create_index("ix_carts_shop_updated", ["shop_id", "updated_at"], unique=False)

    op.create_table(
        "messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("shop_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("scenario_key", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("trigger_key", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("idempotency_key", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("to_address", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("subject", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("body_text", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("body_html", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("rfc_message_id", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("scheduled_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("lease_until", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("enqueued_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("sent_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
        ),
        sa.ForeignKeyConstraint(
            ["shop_id"],
            ["shops.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("idempotency_key"),
    )
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_messages_rfc_message_id"), ["rfc_message_id"], unique=False)
        batch_op.create_index("ix_messages_shop_customer_time", ["shop_id", "customer_id", "created_at"], unique=False)
        batch_op.create_index("ix_messages_shop_scenario", ["shop_id", "scenario_key", "status"], unique=False)
        batch_op.create_index("ix_messages_status_due", ["status", "scheduled_at"], unique=False)

    op.create_table(
        "orders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("shop_id", sa.Integer(), nullable=False),
        sa.Column("external_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("ordered_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("currency", sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
        sa.Column("canceled", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
        ),
        sa.ForeignKeyConstraint(
            ["shop_id"],
            ["shops.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("shop_id", "external_id"),
    )
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.create_index("ix_orders_shop_customer_time", ["shop_id", "customer_id", "ordered_at"], unique=False)
        batch_op.create_index("ix_orders_shop_time", ["shop_id", "ordered_at"], unique=False)

    op.create_table(
        "cart_lines",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("shop_id", sa.Integer(), nullable=False),
        sa.Column("cart_id", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=True),
        sa.Column("product_external_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("unit_price", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["cart_id"],
            ["carts.id"],
        ),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["products.id"],
        ),
        sa.ForeignKeyConstraint(
            ["shop_id"],
            ["shops.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("cart_lines", schema=None) as batch_op:
        batch_op.create_index("ix_cart_lines_cart", ["cart_id"], unique=False)

    op.create_table(
        "message_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("shop_id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("url", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
        sa.Column("occurred_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
        ),
        sa.ForeignKeyConstraint(
            ["shop_id"],
            ["shops.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("message_events", schema=None) as batch_op:
        batch_op.create_index("ix_message_events_shop_msg", ["shop_id", "message_id"], unique=False)

    op.create_table(
        "order_lines",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("shop_id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=True),
        sa.Column("product_external_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("unit_price", sa.Integer(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.id"],
        ),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["products.id"],
        ),
        sa.ForeignKeyConstraint(
            ["shop_id"],
            ["shops.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("order_lines", schema=None) as batch_op:
        batch_op.create_index("ix_order_lines_order", ["order_id"], unique=False)
        batch_op.create_index("ix_order_lines_shop_product", ["shop_id", "product_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("order_lines", schema=None) as batch_op:
        batch_op.drop_index("ix_order_lines_shop_product")
        batch_op.drop_index("ix_order_lines_order")

    op.drop_table("order_lines")
    with op.batch_alter_table("message_events", schema=None) as batch_op:
        batch_op.drop_index("ix_message_events_shop_msg")

    op.drop_table("message_events")
    with op.batch_alter_table("cart_lines", schema=None) as batch_op:
        batch_op.drop_index("ix_cart_lines_cart")

    op.drop_table("cart_lines")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index("ix_orders_shop_time")
        batch_op.drop_index("ix_orders_shop_customer_time")

    op.drop_table("orders")
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index("ix_messages_status_due")
        batch_op.drop_index("ix_messages_shop_scenario")
        batch_op.drop_index("ix_messages_shop_customer_time")
        batch_op.drop_index(batch_op.f("ix_messages_rfc_message_id"))

    op.drop_table("messages")
    with op.batch_alter_table("carts", schema=None) as batch_op:
        batch_op.drop_index("ix_carts_shop_updated")

    op.drop_table("carts")
    with op.batch_alter_table("browse_events", schema=None) as batch_op:
        batch_op.drop_index("ix_browse_shop_time")
        batch_op.drop_index("ix_browse_shop_customer")

    op.drop_table("browse_events")
    op.drop_table("sync_states")
    op.drop_table("suppressions")
    op.drop_table("scenario_settings")
    with op.batch_alter_table("products", schema=None) as batch_op:
        batch_op.drop_index("ix_products_shop_group")

    op.drop_table("products")
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.drop_index("ix_customers_shop_email")

    op.drop_table("customers")
    op.drop_table("webhook_receipts")
    with op.batch_alter_table("shops", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_shops_event_key"))

    op.drop_table("shops")
    op.drop_table("leases")

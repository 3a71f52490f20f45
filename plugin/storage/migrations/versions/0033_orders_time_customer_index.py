"""orders: the (shop, ordered_at) index also holds customer_id

A post-purchase step reads the orders of a time window; a tick split by customer range adds
`customer_id` bounds. With only (shop_id, ordered_at) PostgreSQL preferred the
(shop_id, customer_id, ordered_at) index and scanned half a 1M-customer shop's orders for each
step's window; with customer_id in the time index the window is read alone, the range checked
in the index. The wider index serves every query the old one did.

Revision ID: 0033
Revises: 0032
Create Date: 2026-12-02 16:45:00
"""

from __future__ import annotations

from alembic import op

revision = "0033"
down_revision = "0032"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_orders_shop_time_customer", "orders", ["shop_id", "ordered_at", "customer_id"])
    op.drop_index("ix_orders_shop_time", table_name="orders")


def downgrade() -> None:
    op.create_index("ix_orders_shop_time", "orders", ["shop_id", "ordered_at"])
    op.drop_index("ix_orders_shop_time_customer", table_name="orders")

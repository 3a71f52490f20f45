"""carts by customer

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 09:20:45.430437
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("carts", schema=None) as batch_op:
        batch_op.create_index("ix_carts_shop_customer", ["shop_id", "customer_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("carts", schema=None) as batch_op:
        batch_op.drop_index("ix_carts_shop_customer")

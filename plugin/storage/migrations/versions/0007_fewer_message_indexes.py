"""fewer message indexes

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 09:40:15.609121
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_messages_shop_customer_time"))
        batch_op.drop_index(batch_op.f("ix_messages_trigger"))


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_messages_trigger"), ["shop_id", "customer_id", "scenario_key", "trigger_key"], unique=False)
        batch_op.create_index(batch_op.f("ix_messages_shop_customer_time"), ["shop_id", "customer_id", "created_at"], unique=False)

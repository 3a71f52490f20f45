"""frequency cap index

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 09:11:34.549004
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.create_index("ix_messages_customer_schedule", ["shop_id", "customer_id", "scheduled_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index("ix_messages_customer_schedule")

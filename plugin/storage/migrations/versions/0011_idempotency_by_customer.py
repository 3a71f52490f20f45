"""idempotency by customer: the unique index becomes (customer_id, scenario_key, trigger_key)
(a customer belongs to one shop), so per-customer probes, which no longer name the shop, can
only be answered by it; with no statistics PostgreSQL took the shop-wide index for them

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-24 03:40:00
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_constraint("uq_messages_trigger", type_="unique")
        batch_op.create_unique_constraint("uq_messages_trigger", ["customer_id", "scenario_key", "trigger_key"])


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_constraint("uq_messages_trigger", type_="unique")
        batch_op.create_unique_constraint("uq_messages_trigger", ["shop_id", "customer_id", "scenario_key", "trigger_key"])

"""one index by shop: the unique key is (shop_id, customer_id, scenario_key, trigger_key) again
and (shop_id, scenario_key, status) goes; the settings page's counts and switch-off read the
shop's range of the unique index. One index fewer on every outbox write and status change
(~4 s of a 1M-customer first tick), and no second shop-led index for the planner to take for a
per-customer probe

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-24 04:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index("ix_messages_shop_scenario")
        batch_op.drop_constraint("uq_messages_trigger", type_="unique")
        batch_op.create_unique_constraint("uq_messages_trigger", ["shop_id", "customer_id", "scenario_key", "trigger_key"])


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_constraint("uq_messages_trigger", type_="unique")
        batch_op.create_unique_constraint("uq_messages_trigger", ["customer_id", "scenario_key", "trigger_key"])
        batch_op.create_index("ix_messages_shop_scenario", ["shop_id", "scenario_key", "status"], unique=False)

"""idempotency key as columns: one unique index on (shop_id, customer_id, scenario_key,
trigger_key) replaces the unique text key and the frequency cap's index (it serves the cap's
per-customer lookup too), one index fewer to keep up on every outbox write

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-24 02:30:00
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

# SQLite's unique constraints are unnamed: batch mode names them by this convention to drop them
NAMING = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


def _old_unique() -> str:
    return "messages_idempotency_key_key" if op.get_bind().dialect.name == "postgresql" else "uq_messages_idempotency_key"


def upgrade() -> None:
    with op.batch_alter_table("messages", schema=None, naming_convention=NAMING) as batch_op:
        batch_op.drop_index("ix_messages_customer_schedule")
        batch_op.drop_constraint(_old_unique(), type_="unique")
        batch_op.create_unique_constraint("uq_messages_trigger", ["shop_id", "customer_id", "scenario_key", "trigger_key"])


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None, naming_convention=NAMING) as batch_op:
        batch_op.drop_constraint("uq_messages_trigger", type_="unique")
        batch_op.create_unique_constraint(_old_unique(), ["idempotency_key"])
        batch_op.create_index("ix_messages_customer_schedule", ["shop_id", "customer_id", "scheduled_at"], unique=False)

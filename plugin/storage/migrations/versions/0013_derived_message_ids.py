"""the outbox keeps neither the idempotency key as text nor the Message-ID: both are derived
from (shop_id, scenario_key, customer_id, trigger_key) when needed (`idempotency_key()`,
`rfc_message_id()`), giving the same values as were stored. Two text columns less on every row
a tick writes (~11 % of a 1M-customer first tick on SQLite)

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-24 06:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_KEY = "shop_id || ':' || scenario_key || ':' || customer_id || ':' || trigger_key"


def upgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_column("idempotency_key")
        batch_op.drop_column("rfc_message_id")


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("idempotency_key", sa.String(length=255), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("rfc_message_id", sa.String(length=255), nullable=False, server_default=""))
    op.execute(f"UPDATE messages SET idempotency_key = {_KEY}, "
               f"rfc_message_id = '<' || replace({_KEY}, ':', '.') || '@okaeri>'")
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.alter_column("idempotency_key", server_default=None)
        batch_op.alter_column("rfc_message_id", server_default=None)

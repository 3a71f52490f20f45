"""lean message writes: no index on rfc_message_id (links carry the row id), no foreign keys
on the outbox (rows are written only from a join on the shop's customers; the checks cost a
third of a large tick's write on PostgreSQL)

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23 12:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# SQLite's foreign keys are unnamed: batch mode names them by this convention to drop them
NAMING = {"fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s"}


def _fk_names() -> tuple[str, str]:
    if op.get_bind().dialect.name == "postgresql":
        return "messages_shop_id_fkey", "messages_customer_id_fkey"
    return "fk_messages_shop_id_shops", "fk_messages_customer_id_customers"


def upgrade() -> None:
    shop_fk, customer_fk = _fk_names()
    with op.batch_alter_table("messages", schema=None, naming_convention=NAMING) as batch_op:
        batch_op.drop_index(batch_op.f("ix_messages_rfc_message_id"))
        batch_op.drop_constraint(shop_fk, type_="foreignkey")
        batch_op.drop_constraint(customer_fk, type_="foreignkey")


def downgrade() -> None:
    shop_fk, customer_fk = _fk_names()
    with op.batch_alter_table("messages", schema=None, naming_convention=NAMING) as batch_op:
        batch_op.create_foreign_key(customer_fk, "customers", ["customer_id"], ["id"])
        batch_op.create_foreign_key(shop_fk, "shops", ["shop_id"], ["id"])
        batch_op.create_index(batch_op.f("ix_messages_rfc_message_id"), ["rfc_message_id"], unique=False)


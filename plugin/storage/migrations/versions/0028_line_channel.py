"""LINE as a second channel: a shop's LINE accounts, customer links, one-time link codes, the
retry key of every push, and the shop's channel rule

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-02 07:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None

_TEXT = sqlmodel.sql.sqltypes.AutoString
_WHEN = sqlmodel.sql.sqltypes.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "line_accounts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("shop_id", sa.Integer(), nullable=False),
        sa.Column("name", _TEXT(length=100), nullable=False),
        sa.Column("channel_id", _TEXT(length=32), nullable=False),
        sa.Column("bot_user_id", _TEXT(length=64), nullable=False),
        sa.Column("basic_id", _TEXT(length=32), nullable=False),
        sa.Column("display_name", _TEXT(length=100), nullable=False),
        sa.Column("webhook_key", _TEXT(length=64), nullable=False),
        sa.Column("secret_encrypted", _TEXT(), nullable=False),
        sa.Column("token_encrypted", _TEXT(), nullable=False),
        sa.Column("paused_until", _WHEN(), nullable=True),
        sa.Column("pause_reason", _TEXT(length=32), nullable=False),
        sa.Column("created_at", _WHEN(), nullable=False),
        sa.ForeignKeyConstraint(["shop_id"], ["shops.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("webhook_key"),
    )
    op.create_index("ix_line_accounts_shop", "line_accounts", ["shop_id"])
    op.create_table(
        "line_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("shop_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("line_user_id", _TEXT(length=64), nullable=False),
        sa.Column("following", sa.Boolean(), nullable=False),
        sa.Column("source", _TEXT(length=16), nullable=False),
        sa.Column("linked_at", _WHEN(), nullable=False),
        sa.Column("changed_at", _WHEN(), nullable=False),
        sa.ForeignKeyConstraint(["shop_id"], ["shops.id"]),
        sa.ForeignKeyConstraint(["account_id"], ["line_accounts.id"]),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("account_id", "line_user_id"),
        sa.UniqueConstraint("account_id", "customer_id"),
    )
    op.create_index("ix_line_links_customer", "line_links", ["customer_id"])
    op.create_table(
        "line_link_codes",
        sa.Column("code", _TEXT(length=32), nullable=False),
        sa.Column("shop_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("expires_at", _WHEN(), nullable=False),
        sa.Column("used_at", _WHEN(), nullable=True),
        sa.ForeignKeyConstraint(["shop_id"], ["shops.id"]),
        sa.ForeignKeyConstraint(["account_id"], ["line_accounts.id"]),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"]),
        sa.PrimaryKeyConstraint("code"),
    )
    op.create_table(
        "line_pushes",
        sa.Column("message_key", _TEXT(length=255), nullable=False),
        sa.Column("retry_key", _TEXT(length=36), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("created_at", _WHEN(), nullable=False),
        sa.Column("accepted_at", _WHEN(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("message_key"),
    )
    op.create_table(
        "line_scenario_accounts",
        sa.Column("shop_id", sa.Integer(), nullable=False),
        sa.Column("scenario_key", _TEXT(length=32), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["shop_id"], ["shops.id"]),
        sa.ForeignKeyConstraint(["account_id"], ["line_accounts.id"]),
        sa.PrimaryKeyConstraint("shop_id", "scenario_key"),
    )
    op.create_table(
        "channel_rules",
        sa.Column("shop_id", sa.Integer(), nullable=False),
        sa.Column("preferred", _TEXT(length=100), nullable=False),
        sa.Column("follow_up", sa.Boolean(), nullable=False),
        sa.Column("follow_up_hours", sa.Integer(), nullable=False),
        sa.Column("updated_at", _WHEN(), nullable=False),
        sa.ForeignKeyConstraint(["shop_id"], ["shops.id"]),
        sa.PrimaryKeyConstraint("shop_id"),
    )


def downgrade() -> None:
    op.drop_table("channel_rules")
    op.drop_table("line_scenario_accounts")
    op.drop_table("line_pushes")
    op.drop_table("line_link_codes")
    op.drop_index("ix_line_links_customer", table_name="line_links")
    op.drop_table("line_links")
    op.drop_index("ix_line_accounts_shop", table_name="line_accounts")
    op.drop_table("line_accounts")

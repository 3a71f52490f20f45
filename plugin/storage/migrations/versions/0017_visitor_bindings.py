"""visitor bindings and cart sources: which storefront visitor speaks for which customer (and
how that was proven), and which carts storefront events may change

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-02 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0017"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "visitor_bindings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("shop_id", sa.Integer(), nullable=False),
        sa.Column("visitor_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("proof", sa.String(length=8), nullable=False),
        sa.Column("bound_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["shop_id"], ["shops.id"]),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("shop_id", "visitor_id"),
    )
    op.create_index("ix_visitor_bindings_shop_customer", "visitor_bindings", ["shop_id", "customer_id"])
    op.create_index("ix_visitor_bindings_shop_bound", "visitor_bindings", ["shop_id", "bound_at"])
    # Plain ADD COLUMN (not batch mode), as in 0015: SQLite adds these in place.
    op.add_column("carts", sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False,
                                     server_default="storefront"))
    op.add_column("carts", sa.Column("visitor_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False,
                                     server_default=""))


def downgrade() -> None:
    op.drop_column("carts", "visitor_id")
    op.drop_column("carts", "source")
    op.drop_index("ix_visitor_bindings_shop_bound", table_name="visitor_bindings")
    op.drop_index("ix_visitor_bindings_shop_customer", table_name="visitor_bindings")
    op.drop_table("visitor_bindings")

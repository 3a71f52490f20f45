"""recommendations

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 08:08:35.027019
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "recommendation_sets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("shop_id", sa.Integer(), nullable=False),
        sa.Column("model", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("validation_recall", sa.Float(), nullable=False),
        sa.Column("customers", sa.Integer(), nullable=False),
        sa.Column("items", sa.Integer(), nullable=False),
        sa.Column("train_seconds", sa.Float(), nullable=False),
        sa.Column("trained_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["shop_id"],
            ["shops.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("recommendation_sets", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_recommendation_sets_shop_id"), ["shop_id"], unique=False)

    op.create_table(
        "recommendations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("shop_id", sa.Integer(), nullable=False),
        sa.Column("set_id", sa.Integer(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("subject", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("product_ids", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.ForeignKeyConstraint(
            ["set_id"],
            ["recommendation_sets.id"],
        ),
        sa.ForeignKeyConstraint(
            ["shop_id"],
            ["shops.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("set_id", "kind", "subject"),
    )
    with op.batch_alter_table("recommendations", schema=None) as batch_op:
        batch_op.create_index("ix_recommendations_shop_set", ["shop_id", "set_id"], unique=False)

    with op.batch_alter_table("shops", schema=None) as batch_op:
        batch_op.add_column(sa.Column("recommendation_set_id", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("shops", schema=None) as batch_op:
        batch_op.drop_column("recommendation_set_id")

    with op.batch_alter_table("recommendations", schema=None) as batch_op:
        batch_op.drop_index("ix_recommendations_shop_set")

    op.drop_table("recommendations")
    with op.batch_alter_table("recommendation_sets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_recommendation_sets_shop_id"))

    op.drop_table("recommendation_sets")

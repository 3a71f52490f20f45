"""the platform's id of a shop's storefront script tag, so re-authorisation updates that one tag
instead of registering another

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-02 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("shops", sa.Column("script_tag_id", sa.String(length=64), nullable=False, server_default=""))


def downgrade() -> None:
    op.drop_column("shops", "script_tag_id")

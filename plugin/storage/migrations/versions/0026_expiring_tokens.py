"""expiring platform tokens: access token expiry, the encrypted refresh token and its expiry, and the
claim one worker holds while it refreshes

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-02 07:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("shops", sa.Column("token_expires_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
    op.add_column("shops", sa.Column("refresh_token_encrypted", sqlmodel.sql.sqltypes.AutoString(), nullable=False, server_default=""))
    op.add_column("shops", sa.Column("refresh_expires_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
    op.add_column("shops", sa.Column("token_refresh_holder", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False, server_default=""))
    op.add_column("shops", sa.Column("token_refresh_until", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))


def downgrade() -> None:
    for column in ("token_refresh_until", "token_refresh_holder", "refresh_expires_at", "refresh_token_encrypted",
                   "token_expires_at"):
        op.drop_column("shops", column)

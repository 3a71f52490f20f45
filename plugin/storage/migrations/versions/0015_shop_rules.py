"""shop rules as settings: the quiet-hours window and the frequency cap (window, count) per
shop, with the defaults every shop had until now (21:00-08:00, one message per 24 h)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-01 22:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

COLUMNS = {"quiet_start_hour": "21", "quiet_end_hour": "8", "cap_window_hours": "24", "cap_count": "1"}


def upgrade() -> None:
    with op.batch_alter_table("shops") as batch:
        for name, default in COLUMNS.items():
            batch.add_column(sa.Column(name, sa.Integer(), nullable=False, server_default=default))


def downgrade() -> None:
    with op.batch_alter_table("shops") as batch:
        for name in COLUMNS:
            batch.drop_column(name)

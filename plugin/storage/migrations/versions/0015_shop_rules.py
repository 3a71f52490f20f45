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


# Plain ALTER TABLE, not batch mode: SQLite (3.35+) adds and drops these columns in place, and
# batch mode's copy of `shops` fails while other tables' foreign keys point at its rows.


def upgrade() -> None:
    for name, default in COLUMNS.items():
        op.add_column("shops", sa.Column(name, sa.Integer(), nullable=False, server_default=default))


def downgrade() -> None:
    for name in COLUMNS:
        op.drop_column("shops", name)

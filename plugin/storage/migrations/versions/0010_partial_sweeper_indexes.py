"""partial sweeper indexes: (scheduled_at) over pending rows and (lease_until) over sending
rows replace (status, scheduled_at), which held every row ever written and, with no statistics,
drew SQLite's frequency cap lookup away from the per-customer index

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-24 03:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def _where(status: str) -> dict[str, sa.TextClause]:
    return {"sqlite_where": sa.text(f"status = '{status}'"), "postgresql_where": sa.text(f"status = '{status}'")}


def upgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index("ix_messages_status_due")
        batch_op.create_index("ix_messages_pending_due", ["scheduled_at"], unique=False, **_where("pending"))
        batch_op.create_index("ix_messages_sending_lease", ["lease_until"], unique=False, **_where("sending"))


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index("ix_messages_sending_lease")
        batch_op.drop_index("ix_messages_pending_due")
        batch_op.create_index("ix_messages_status_due", ["status", "scheduled_at"], unique=False)

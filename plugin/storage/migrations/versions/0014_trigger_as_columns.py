"""the trigger as typed columns: trigger_kind, trigger_ref, trigger_step, filled once from the
trigger_key texts written so far (which stays, unchanged, as the identity the unique index
holds); context (its only content, ref_id, is trigger_ref), body_text and body_html (never
read) go

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01 22:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

BATCH = 10_000
_messages = sa.table("messages", sa.column("id", sa.Integer), sa.column("trigger_key", sa.String),
                     sa.column("trigger_kind", sa.String), sa.column("trigger_ref", sa.Integer),
                     sa.column("trigger_step", sa.String))


def parse_trigger_key(key: str) -> tuple[str, int | None, str | None]:
    """(kind, ref, step) of a key written before 0014, such that joining the present parts with
    ':' gives the key back, and equal to what the presets now select for the same trigger:
    "cart:5:3" → ("cart", 5, "3"), "cart:5:3:2" → ("cart", 5, "3:2"), "post:9:thanks",
    "restock:4:2026-11-19", "browse:77" → ("browse", 77, None), "expiry:2026-12-01:30" →
    ("expiry", None, "2026-12-01:30"), "statement:2026-11", "ranking:2026-W48", "winback:…",
    "reco:order:12" → ("reco:order", 12, None), "reco:month:2026-11" → ("reco:month", None, "2026-11")."""
    parts = key.split(":")
    words = 2 if parts[0] == "reco" and len(parts) > 1 else 1
    kind, rest = ":".join(parts[:words]), parts[words:]
    ref = None
    if rest and rest[0].isascii() and rest[0].isdigit() and str(int(rest[0])) == rest[0]:
        ref, rest = int(rest[0]), rest[1:]
    return kind, ref, ":".join(rest) if rest else None


def _fill_trigger_columns() -> None:
    connection = op.get_bind()
    update = _messages.update().where(_messages.c.id == sa.bindparam("row_id")).values(
        trigger_kind=sa.bindparam("kind"), trigger_ref=sa.bindparam("ref"), trigger_step=sa.bindparam("step"))
    last = 0
    while True:
        rows = connection.execute(sa.select(_messages.c.id, _messages.c.trigger_key)
                                  .where(_messages.c.id > last).order_by(_messages.c.id).limit(BATCH)).all()
        if not rows:
            return
        values = []
        for row_id, key in rows:
            kind, ref, step = parse_trigger_key(key)
            values.append({"row_id": row_id, "kind": kind, "ref": ref, "step": step})
        connection.execute(update, values)
        last = rows[-1][0]


def upgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("trigger_kind", sa.String(length=16), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("trigger_ref", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("trigger_step", sa.String(length=32), nullable=True))
    _fill_trigger_columns()
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.alter_column("trigger_kind", server_default=None)
        batch_op.drop_column("context")
        batch_op.drop_column("body_text")
        batch_op.drop_column("body_html")


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("body_text", sa.String(), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("body_html", sa.String(), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("context", sa.String(), nullable=False, server_default=""))
    op.execute("UPDATE messages SET context = "
               "'{\"ref_id\": ' || coalesce(CAST(trigger_ref AS VARCHAR), 'null') || '}'")
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.alter_column("body_text", server_default=None)
        batch_op.alter_column("body_html", server_default=None)
        batch_op.drop_column("trigger_kind")
        batch_op.drop_column("trigger_ref")
        batch_op.drop_column("trigger_step")

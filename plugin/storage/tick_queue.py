"""The scheduler's per-shop tick marks: a shop is queued once per round at most, and not again
while its tick is queued or running (unless the mark is older than STALE: a lost job)."""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, literal, select, true
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql import Select
from sqlmodel import Session, col

from plugin.storage.models import QueuedTick
from plugin.storage.upsert import table_of

__all__ = ["queue_ticks", "tick_finished", "STALE"]

STALE = timedelta(minutes=15)  # a tick's own time limit is 10 minutes: a mark this old lost its job


def queue_ticks(session: Session, shops: Select[Any], now: datetime) -> list[int]:
    """Mark every shop `shops` selects that has no live mark; return the newly marked ones, in id
    order (commits). One statement: `INSERT … SELECT … ON CONFLICT DO NOTHING RETURNING`."""
    session.execute(delete(QueuedTick).where(col(QueuedTick.queued_at) < now - STALE))
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    due = shops.subquery()
    statement = insert(QueuedTick).from_select(
        # WHERE true: SQLite reads `… FROM x ON CONFLICT` as a join's ON without it (its documented ambiguity)
        ["shop_id", "queued_at"], select(due.c[0], literal(now, type_=table_of(QueuedTick).c.queued_at.type)).where(true())
    ).on_conflict_do_nothing(index_elements=["shop_id"]).returning(col(QueuedTick.shop_id))
    marked = sorted(session.execute(statement).scalars())
    session.commit()
    return marked


def tick_finished(session: Session, shop_ids: Sequence[int]) -> None:
    """The shops' ticks ended (done or failed): the next round may queue them again (commits)."""
    session.execute(delete(QueuedTick).where(col(QueuedTick.shop_id).in_(list(shop_ids))))
    session.commit()

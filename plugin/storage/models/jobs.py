"""Which shops have a scenario tick queued or running: a scheduler round enqueues only shops not
already in here, so a round that outlasts its interval never queues a shop twice."""
from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

__all__ = ["QueuedTick"]


class QueuedTick(SQLModel, table=True):
    """A shop's tick was handed to the broker at `queued_at` and has not finished yet."""

    __tablename__ = "queued_ticks"

    shop_id: int = Field(primary_key=True, foreign_key="shops.id")
    queued_at: datetime

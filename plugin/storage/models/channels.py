"""A shop's rule for choosing each customer's channel (plugin.channels.choice)."""
from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel


class ChannelRule(SQLModel, table=True):
    """Which channels are tried before a scenario's own, and the unopened-mail follow-up.

    No row: the registry's preferred channels, follow-up on (plugin.channels.choice.DEFAULT)."""

    __tablename__ = "channel_rules"

    shop_id: int = Field(primary_key=True, foreign_key="shops.id")
    preferred: str = Field(default="", max_length=100)  # channel names, comma-separated, tried in order
    follow_up: bool = True  # a message not opened within follow_up_hours may go again on a preferred channel
    follow_up_hours: int = 48
    updated_at: datetime

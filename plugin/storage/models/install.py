"""What an install leaves on the platform and learns from the storefront: its script tags, and the
orders the thanks page reported before sync brought them."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel


class ScriptTag(SQLModel, table=True):
    """One of a shop's storefront script registrations (one per page scope) and the integrity the
    platform holds for it: a different integrity than the served script's means it must be updated."""

    __tablename__ = "script_tags"
    __table_args__ = (UniqueConstraint("shop_id", "scope"),)

    id: int | None = Field(default=None, primary_key=True)
    shop_id: int = Field(foreign_key="shops.id")
    scope: str = Field(max_length=32)  # the platform's page scope (ColorMe: shop, thanks_page)
    tag_id: str = Field(max_length=64)
    integrity: str = Field(default="", max_length=128)
    updated_at: datetime


class ThanksPageOrder(SQLModel, table=True):
    """An order the storefront's thanks page reported: matched to the synced order once sync brings
    it (`order_id`), counted as a conversion at most once (conversions are unique per order)."""

    __tablename__ = "thanks_page_orders"
    __table_args__ = (UniqueConstraint("shop_id", "order_external_id"),)

    id: int | None = Field(default=None, primary_key=True)
    shop_id: int = Field(foreign_key="shops.id")
    order_external_id: str = Field(max_length=64)
    visitor_id: str = Field(max_length=64)
    customer_id: int | None = Field(default=None, foreign_key="customers.id")  # proven by Okaeri's mail link
    order_id: int | None = Field(default=None, foreign_key="orders.id")  # the synced order, once matched
    reported_at: datetime
    matched_at: datetime | None = None

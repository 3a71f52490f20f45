"""Platform-neutral storefront events: what a platform's event parser yields from untrusted bytes."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

__all__ = ["BasketItem", "StorefrontEvent", "InvalidEvent"]


@dataclass(frozen=True)
class BasketItem:
    product_id: str
    quantity: int
    price: int


@dataclass(frozen=True)
class StorefrontEvent:
    """A basket change or product view a visitor's browser reported; it may only point at synced data."""

    kind: Literal["basket", "product_view"]
    customer_id: str
    product_id: str | None = None
    items: tuple[BasketItem, ...] = ()
    cart_url: str = ""
    occurred_at: datetime | None = None  # None: now


class InvalidEvent(ValueError):
    """The posted body is not an event; the message is a short reason for the 422 answer."""

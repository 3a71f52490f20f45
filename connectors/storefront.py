"""Platform-neutral storefront events: what a platform's event parser yields from untrusted bytes.

An event carries only references (a visitor id, a claimed customer id, product ids, quantities)
and an optional proof Okaeri itself signed; nothing in it is ever shown in a message. Prices,
names and links come from the shop's synced data.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

__all__ = ["BasketItem", "StorefrontEvent", "InvalidEvent", "VISITOR_ID_PATTERN"]

# A random first-party id the storefront script keeps per browser: 22–64 URL-safe characters.
VISITOR_ID_PATTERN = r"^[A-Za-z0-9_-]{22,64}$"


@dataclass(frozen=True)
class BasketItem:
    """One basket line: a product id to look up in storage and how many."""

    product_id: str
    quantity: int


@dataclass(frozen=True)
class StorefrontEvent:
    """A basket change or product view a visitor's browser reported; it may only point at synced data.

    `customer_id` is what the page claims (e.g. ColorMe's logged-in customer id), "" when nobody
    is logged in; `proof` is the token Okaeri's own signed mail link handed to this visitor, if any.
    A `purchase` comes from the thanks page and names the platform's order id (`order_id`): it
    counts only once sync brings that order.
    """

    kind: Literal["basket", "product_view", "purchase"]
    visitor_id: str
    customer_id: str = ""
    proof: str = ""
    product_id: str | None = None
    items: tuple[BasketItem, ...] = ()
    order_id: str = ""
    occurred_at: datetime | None = None  # None: now


class InvalidEvent(ValueError):
    """The posted body is not an event; the message is a short reason for the 422 answer."""

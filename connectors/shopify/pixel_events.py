"""What the web pixel (connectors/shopify/pixel/src/index.js) posts to `/events/shopify/{key}`, read as
untrusted bytes into a neutral `StorefrontEvent` (issue 6's identity rules).

The visitor is Shopify's `clientId`; `customer_id` is the customer Shopify's pixel reports as logged
in (a claim: plugin.sync.visitors binds it only as far as its rules allow); `proof` is the token
Okaeri's own signed mail link put in the landing URL. A basket is the whole cart as the pixel knows it
(the cart at page load plus what was added since). Only ids and quantities are read.
"""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, Field, ValidationError

from connectors.payloads import UnreadableJson, load_json
from connectors.storefront import VISITOR_ID_PATTERN, BasketItem, InvalidEvent, StorefrontEvent

__all__ = ["parse_event", "KINDS"]

KINDS = {"product_view": "product_view", "basket": "basket", "purchase": "purchase"}
_NUMBER = r"^[0-9]{1,20}$"


class _Item(BaseModel):
    id: str = Field(pattern=_NUMBER)
    quantity: int = Field(ge=1, le=9999)


class _Beacon(BaseModel):
    type: Literal["product_view", "basket", "purchase"]
    visitor: str = Field(pattern=VISITOR_ID_PATTERN)
    customer_id: str = Field(default="", pattern=r"^[0-9]{0,20}$")
    proof: str = Field(default="", max_length=200, pattern=r"^[A-Za-z0-9._-]*$")
    product_id: str | None = Field(default=None, pattern=_NUMBER)
    items: list[_Item] = Field(default_factory=list, max_length=200)
    order_id: str | None = Field(default=None, pattern=_NUMBER)
    occurred_at: int | None = Field(default=None, ge=0, le=4_102_444_800)  # unix seconds, before 2100


def parse_event(body: bytes) -> StorefrontEvent:
    """Validate one pixel beacon; InvalidEvent with the first reason (a 422 answer)."""
    try:
        beacon = _Beacon.model_validate(load_json(body))
    except ValidationError as exc:
        error = exc.errors()[0]
        raise InvalidEvent(f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}") from None
    except UnreadableJson as exc:
        raise InvalidEvent(str(exc)) from None
    if beacon.type == "product_view" and not beacon.product_id:
        raise InvalidEvent("product_id: required for a product view")
    if beacon.type == "purchase" and not beacon.order_id:
        raise InvalidEvent("order_id: required for a purchase")
    if beacon.type == "basket" and not beacon.items:
        raise InvalidEvent("items: a basket event names its items")
    occurred = None if beacon.occurred_at is None else datetime.fromtimestamp(beacon.occurred_at, UTC)
    return StorefrontEvent(kind=beacon.type, visitor_id=beacon.visitor, customer_id=beacon.customer_id,
                           proof=beacon.proof, product_id=beacon.product_id,
                           items=tuple(BasketItem(product_id=i.id, quantity=i.quantity) for i in beacon.items),
                           order_id=beacon.order_id or "", occurred_at=occurred)

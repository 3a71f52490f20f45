"""ColorMe's storefront side: the tracking script, its script-tag registration, and the events it posts."""
from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from connectors.colorme.client import ColorMeClient
from connectors.errors import BadResponse
from connectors.payloads import UnreadableJson, load_json
from connectors.platform import subresource_integrity
from connectors.storefront import VISITOR_ID_PATTERN, BasketItem, InvalidEvent, StorefrontEvent

__all__ = ["script_body", "script_integrity", "register_script", "update_script", "remove_script", "list_scripts",
           "cart_url", "parse_event", "DISPLAY_SCOPES"]

SCRIPT_TAGS = "/appstore/v1/script_tags"
# A tag has one display_scope; the script is wanted on the shop's pages (events) and on the thanks
# page (the order id of the purchase), so a shop gets one tag per scope, both for the same script.
DISPLAY_SCOPES = ("shop", "thanks_page")


@cache
def script_body() -> str:
    """The script served to shops (a static file beside this module)."""
    return resources.files("connectors.colorme").joinpath("storefront.js").read_text(encoding="utf-8")


def script_integrity() -> str:
    """The SRI of the bytes `/storefront/colorme.js` serves (the script as UTF-8)."""
    return subresource_integrity(script_body().encode())


def _script_tag(src: str, scope: str) -> dict[str, Any]:
    """The tag ColorMe stores: the browser refuses the script if its bytes change (integrity)."""
    if scope not in DISPLAY_SCOPES:
        raise ValueError(f"ColorMe script tags have display_scope {DISPLAY_SCOPES}, not {scope!r}")
    return {"script_tag": {"src": src, "display_scope": scope, "integrity": script_integrity()}}


def register_script(client: ColorMeClient, src: str, scope: str = "shop") -> str:
    """Create a script tag for one display scope; return ColorMe's id for it."""
    answer = client.post(f"{SCRIPT_TAGS}.json", _script_tag(src, scope))
    return str((answer.get("script_tag") or {}).get("id", ""))


def update_script(client: ColorMeClient, script_id: str, src: str, scope: str = "shop") -> None:
    """Point a script tag at `src` with the current script's integrity (PUT, in place)."""
    client.put(f"{SCRIPT_TAGS}/{script_id}.json", _script_tag(src, scope))


def remove_script(client: ColorMeClient, script_id: str) -> None:
    """Delete a script tag; one already gone (404) is not an error."""
    try:
        client.delete(f"{SCRIPT_TAGS}/{script_id}.json")
    except BadResponse as exc:
        if exc.status != 404:
            raise


def list_scripts(client: ColorMeClient) -> dict[str, tuple[str, str]]:
    """The app's script tags on the shop, `{id: (src, display_scope)}` (GET script_tags.json, scope
    read_shop_script_tags)."""
    tags = client.get(f"{SCRIPT_TAGS}.json").get("script_tags")
    if not isinstance(tags, list):
        raise BadResponse("ColorMe script_tags: no 'script_tags' list in response", platform="colorme")
    return {str(t["id"]): (str(t.get("src", "")), str(t.get("display_scope") or "shop"))
            for t in tags if isinstance(t, dict) and t.get("id") is not None}


def cart_url(shop_url: str) -> str:
    """ColorMe serves a shop's cart at `/cart/` under the shop's URL (`https://{shop}.shop-pro.jp/cart/`)."""
    return f"{shop_url.rstrip('/')}/cart/" if shop_url else ""


class _Item(BaseModel):
    id: str = Field(min_length=1, max_length=64, pattern=r"^[0-9]+$")
    quantity: int = Field(ge=1, le=9999)
    # `price` and `name` of Colorme.basket are not read: prices and names come from synced products


class _Beacon(BaseModel):
    """What storefront.js posts (as text/plain, to avoid a CORS preflight); unknown fields are ignored."""

    type: Literal["basket", "product_view", "purchase"]
    visitor: str = Field(pattern=VISITOR_ID_PATTERN)
    customer_id: str | None = Field(default=None, max_length=20, pattern=r"^[0-9]*$")  # Colorme.customer.id
    proof: str | None = Field(default=None, max_length=200, pattern=r"^[A-Za-z0-9._-]*$")  # from Okaeri's mail link
    product_id: str | None = Field(default=None, max_length=64, pattern=r"^[0-9]+$")
    items: list[_Item] = Field(default_factory=list, max_length=200)
    order_id: str | None = Field(default=None, max_length=20, pattern=r"^[0-9]+$")  # Colorme.sale.id (thanks page)
    occurred_at: int | None = None  # unix seconds; defaults to now


def parse_event(body: bytes) -> StorefrontEvent:
    """Validate one beacon; raise InvalidEvent with the first reason."""
    try:
        beacon = _Beacon.model_validate(load_json(body))
    except ValidationError as exc:
        error = exc.errors()[0]
        raise InvalidEvent(f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}") from None
    except UnreadableJson as exc:
        raise InvalidEvent(str(exc)) from None
    if beacon.type == "purchase" and not beacon.order_id:
        raise InvalidEvent("order_id: required for a purchase")
    try:
        occurred_at = None if beacon.occurred_at is None else datetime.fromtimestamp(beacon.occurred_at, UTC)
    except (OverflowError, OSError, ValueError):
        raise InvalidEvent("occurred_at is not a unix time") from None
    return StorefrontEvent(
        kind=beacon.type, visitor_id=beacon.visitor, customer_id=beacon.customer_id or "", proof=beacon.proof or "",
        product_id=beacon.product_id, items=tuple(BasketItem(product_id=i.id, quantity=i.quantity) for i in beacon.items),
        order_id=beacon.order_id or "", occurred_at=occurred_at)

"""ColorMe JSON → platform-neutral records. Amounts are integer JPY; times are unix seconds."""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from connectors.base import (
    CustomerRecord,
    OrderLineRecord,
    OrderRecord,
    ProductRecord,
    ShopInfo,
    guest_external_id,
)

__all__ = ["shop_info", "customer", "product", "order", "from_unix", "is_guest", "LISTED_STATES"]

# display_state values a storefront lists to everyone (`hidden` and members-only ones are not promoted)
LISTED_STATES = ("showing", "sale_for_members")


def from_unix(value: Any) -> datetime:
    """ColorMe timestamps (unix seconds, maybe null) as aware UTC datetimes."""
    return datetime.fromtimestamp(int(value or 0), UTC)


def shop_info(body: dict[str, Any]) -> ShopInfo:
    shop = body["shop"]
    return ShopInfo(
        external_id=str(shop["id"]),
        name=shop.get("title") or shop.get("title_short") or str(shop["id"]),
        domain=(shop.get("url") or "").rstrip("/"),
        owner_email=shop.get("shop_mail_1") or shop.get("user_mail") or "",
    )


def sender_address(body: dict[str, Any]) -> str:
    """The shop's postal address as shown in mail footers (特定電子メール法)."""
    shop = body["shop"]
    parts = [shop.get("postal") and f"〒{shop['postal']}", shop.get("pref_name"),
             shop.get("address1"), shop.get("address2")]
    return " ".join(p for p in parts if p)


def is_guest(data: dict[str, Any]) -> bool:
    """A buyer without an account: no id, or `member: false` (GET /customers/{id} cannot fetch them)."""
    return data.get("id") in (None, "") or data.get("member") is False


def customer(data: dict[str, Any], updated: Any = None) -> CustomerRecord | None:
    """A member as it is; a guest keyed by email (None without one: nothing to key or reach)."""
    email = (data.get("mail") or "").strip()
    guest = is_guest(data)
    if guest and not email:
        return None
    return CustomerRecord(
        external_id=guest_external_id(email) if guest else str(data["id"]),
        email=email,
        name=data.get("name") or "",
        email_consent=data.get("receive_mail_magazine") is True,
        points_balance=0 if guest else int(data.get("points") or 0),
        updated_at=from_unix(updated or data.get("update_date") or data.get("make_date")),
        line_user_id=None if guest else data.get("line_uid") or None,
        is_guest=guest,
    )


def product(data: dict[str, Any], shop_url: str, categories: dict[tuple[int, int], str]) -> ProductRecord:
    category = data.get("category") or {}
    key = (int(category.get("id_big") or 0), int(category.get("id_small") or 0))
    name = categories.get(key) or categories.get((key[0], 0), "")
    stock = int(data.get("stocks") or 0) if data.get("stock_managed") else None
    return ProductRecord(
        external_id=str(data["id"]),
        code=data.get("model_number") or "",
        group_code=data.get("model_number") or str(data["id"]),
        name=data.get("name") or "",
        price=int(data.get("sales_price") or data.get("price") or 0),
        currency="JPY",
        stock=stock,
        category=name,
        url=f"{shop_url}/?pid={data['id']}" if shop_url else "",
        image_url=data.get("image_url") or "",
        visible=data.get("display_state", "showing") in LISTED_STATES,
        updated_at=from_unix(data.get("update_date") or data.get("make_date")),
    )


def order(data: dict[str, Any]) -> OrderRecord:
    buyer = data.get("customer") or {}
    guest = customer(buyer, data.get("update_date") or data.get("make_date")) if is_guest(buyer) else None
    member_id = None if is_guest(buyer) else str(buyer["id"])
    return OrderRecord(
        external_id=str(data["id"]),
        customer_external_id=guest.external_id if guest else member_id,
        guest=guest,
        ordered_at=from_unix(data.get("make_date")),
        updated_at=from_unix(data.get("update_date") or data.get("make_date")),
        total=int(data.get("total_price") or 0),
        currency="JPY",
        canceled=bool(data.get("canceled")),
        lines=[
            OrderLineRecord(
                product_external_id=str(d.get("product_id") or ""),
                name=d.get("product_name") or "",
                unit_price=int(d.get("price_with_tax") or d.get("price") or 0),
                quantity=int(d.get("product_num") or 1),
            )
            for d in data.get("details") or []
        ],
    )


def categories(body: dict[str, Any]) -> dict[tuple[int, int], str]:
    """Map (id_big, id_small) → name from GET /v1/categories (children nested or flat)."""
    names: dict[tuple[int, int], str] = {}
    for big in body.get("categories") or []:
        names[(int(big["id_big"]), int(big.get("id_small") or 0))] = big.get("name") or ""
        for small in big.get("children") or []:
            names[(int(small["id_big"]), int(small["id_small"]))] = small.get("name") or ""
    return names

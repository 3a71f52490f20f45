"""Shopify GraphQL objects (bulk JSONL lines or paged query nodes) → platform-neutral records.

Ids are the numeric part of the global id (`gid://shopify/Customer/42` → "42"). Money arrives as a
decimal string; records hold integers in the currency's display unit for zero-decimal currencies
(JPY, KRW, …) and in minor units (cents) otherwise. Email consent is Shopify's
`emailMarketingConsent.marketingState == SUBSCRIBED` (the old `acceptsMarketing` was removed).
"""
from __future__ import annotations

from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from connectors.base import CustomerRecord, OrderLineRecord, OrderRecord, ProductRecord
from connectors.errors import BadResponse
from connectors.shopify.bulk import BulkObject, gid_parts

__all__ = ["customer", "product", "order", "money", "moment", "points_balance", "points_expiry", "ZERO_DECIMAL_CURRENCIES"]

PLATFORM = "shopify"
ZERO_DECIMAL_CURRENCIES = frozenset({"JPY", "KRW", "VND", "CLP", "ISK", "TWD", "HUF", "UGX", "XAF", "XOF"})


def moment(value: Any) -> datetime:
    """An ISO 8601 time from the API as an aware UTC datetime."""
    if not isinstance(value, str):
        raise BadResponse("missing timestamp", platform=PLATFORM)
    try:
        parsed = datetime.fromisoformat(value)  # Python 3.11 reads a trailing Z itself
    except ValueError as exc:
        raise BadResponse(f"bad timestamp {value[:40]!r}", platform=PLATFORM) from exc
    if parsed.tzinfo is UTC:
        return parsed
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def money(value: Any, currency: str) -> int:
    """A decimal amount string as an integer (whole units for zero-decimal currencies, else minor)."""
    if isinstance(value, str):
        whole, _, fraction = value.partition(".")
        if 0 < len(whole) <= 12 and whole.isascii() and whole.isdigit() and (
                not fraction or (fraction.isascii() and fraction.isdigit())):
            return _plain_money(whole, fraction, currency not in ZERO_DECIMAL_CURRENCIES)
    try:
        amount = Decimal(str(value if value is not None else "0"))
    except InvalidOperation as exc:
        raise BadResponse(f"bad amount {str(value)[:30]!r}", platform=PLATFORM) from exc
    if not amount.is_finite() or abs(amount) > 10**12:
        raise BadResponse("amount out of range", platform=PLATFORM)
    scale = Decimal(1) if currency in ZERO_DECIMAL_CURRENCIES else Decimal(100)
    return int((amount * scale).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _plain_money(whole: str, fraction: str, minor: bool) -> int:
    """`money` of a plain non-negative decimal below 10**12 without Decimal (most amounts; half up)."""
    if not minor:
        return int(whole) + (fraction[:1] >= "5")
    return int(whole) * 100 + int(fraction[:2].ljust(2, "0")) + (fraction[2:3] >= "5")


def _shop_money(price_set: Any) -> tuple[Any, str]:
    shop_money = (price_set or {}).get("shopMoney") or {}
    return shop_money.get("amount"), str(shop_money.get("currencyCode") or "JPY")


def customer(node: dict[str, Any]) -> CustomerRecord:
    consent = node.get("emailMarketingConsent") or {}
    name = " ".join(p for p in (node.get("lastName"), node.get("firstName")) if p)  # family name first
    return CustomerRecord(
        external_id=gid_parts(node.get("id"))[1],
        email=str(node.get("email") or "").strip(),
        name=name or str(node.get("displayName") or ""),
        email_consent=consent.get("marketingState") == "SUBSCRIBED",
        points_balance=points_balance(node.get("pointsBalance")),  # a merchant-named metafield, if any
        updated_at=moment(node.get("updatedAt")),
        points_expire_at=points_expiry(node.get("pointsExpireAt")),
    )


def _metafield_value(field: Any) -> str:
    return str(field.get("value") or "").strip() if isinstance(field, dict) else ""


def points_balance(field: Any) -> int:
    """A balance metafield (`number_integer`, `number_decimal` or text digits) as whole points; 0 when
    absent or unreadable (a merchant's bad value must not stop the sync)."""
    try:
        amount = Decimal(_metafield_value(field) or "0")
    except InvalidOperation:
        return 0
    return int(amount) if amount.is_finite() and 0 < amount < 10**12 else 0


def points_expiry(field: Any) -> datetime | None:
    """An expiry metafield (`date` or `date_time`) as a UTC time; None when absent or unreadable."""
    value = _metafield_value(field)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None
    except ValueError:
        return None
    if parsed is None:
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def product(item: BulkObject, shop_url: str, shop_currency: str = "JPY") -> ProductRecord:
    """A product and its variants. A variant's price is a decimal in the shop's currency (Shopify's
    Product names none), so a USD shop's "19.99" is 1999 cents, not 19 yen."""
    node = item.data
    variants = item.children.get("ProductVariant") or [v for v in _edges(node.get("variants"))]
    currency = str(node.get("currency") or shop_currency)
    prices = [money(v.get("price"), currency) for v in variants if v.get("price") is not None]
    tracked = [v for v in variants if v.get("inventoryQuantity") is not None]
    handle = str(node.get("handle") or "")
    image = node.get("featuredImage") or {}
    skus = [str(v.get("sku")) for v in variants if v.get("sku")]
    number = item.id_parts()[1]
    return ProductRecord(
        external_id=number,
        code=skus[0] if skus else handle,
        group_code=handle or number,
        name=str(node.get("title") or ""),
        price=min(prices) if prices else 0,
        currency=currency,
        stock=sum(max(0, int(v["inventoryQuantity"])) for v in tracked) if tracked else None,
        category=str(node.get("productType") or ""),
        url=str(node.get("onlineStoreUrl") or (f"{shop_url}/products/{handle}" if shop_url and handle else "")),
        image_url=str(image.get("url") or ""),
        visible=node.get("status") == "ACTIVE",
        updated_at=moment(node.get("updatedAt")),
    )


def order(item: BulkObject) -> OrderRecord:
    node = item.data
    amount, currency = _shop_money(node.get("currentTotalPriceSet") or node.get("totalPriceSet"))
    buyer = node.get("customer") or {}
    lines = []
    for line in item.children.get("LineItem") or list(_edges(node.get("lineItems"))):
        product_ref = line.get("product") or {}
        if not product_ref.get("id"):
            continue  # a custom line (shipping protection, a deleted product): nothing to recommend
        unit, _ = _shop_money(line.get("originalUnitPriceSet"))
        lines.append(OrderLineRecord(gid_parts(product_ref["id"])[1], str(line.get("name") or ""),  # positional: cheaper
                                     money(unit, currency), max(0, int(line.get("quantity") or 0))))
    return OrderRecord(
        external_id=item.id_parts()[1],
        customer_external_id=gid_parts(buyer["id"])[1] if buyer.get("id") else None,
        ordered_at=moment(node.get("createdAt")),
        updated_at=moment(node.get("updatedAt") or node.get("createdAt")),
        total=money(amount, currency),
        currency=currency,
        canceled=bool(node.get("cancelledAt")),
        lines=lines,
    )


def _edges(connection: Any) -> list[dict[str, Any]]:
    """Nodes of a paged connection (`{edges: [{node}]}` or `{nodes: [...]}`) in a non-bulk query."""
    if not isinstance(connection, dict):
        return []
    if isinstance(connection.get("nodes"), list):
        return [n for n in connection["nodes"] if isinstance(n, dict)]
    return [e["node"] for e in connection.get("edges") or [] if isinstance(e, dict) and isinstance(e.get("node"), dict)]

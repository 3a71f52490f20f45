"""Shopify webhook payloads (the REST representation, snake_case) → the same neutral records that
`mapping` yields for GraphQL nodes, so a hook and a sync write identical rows.

Ids are REST's plain numbers (GraphQL's global ids end in the same number). Consent is
`email_marketing_consent.state == "subscribed"` (GraphQL: `marketingState == SUBSCRIBED`). A
customer payload carries no metafields, hence no points: records say so (`points_known=False`).
"""
from __future__ import annotations

from typing import Any

from connectors.base import (
    CheckoutLineRecord,
    CheckoutRecord,
    CustomerRecord,
    OrderLineRecord,
    OrderRecord,
    ProductRecord,
    guest_external_id,
)
from connectors.errors import BadResponse
from connectors.shopify.mapping import moment, money

__all__ = ["customer", "product", "order", "checkout", "numeric_id"]

PLATFORM = "shopify"


def numeric_id(value: Any) -> str:
    """A REST id (a JSON number, or a string of digits) as the records' external id."""
    if isinstance(value, bool) or value is None:
        raise BadResponse("missing id", platform=PLATFORM)
    text = str(value)
    if not text.isdigit() or len(text) > 20:
        raise BadResponse(f"bad id {text[:30]!r}", platform=PLATFORM)
    return text


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadResponse(f"{what} is not an object", platform=PLATFORM)
    return value


def _list(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def customer(payload: Any) -> CustomerRecord:
    body = _object(payload, "customer")
    consent = body.get("email_marketing_consent") or {}
    name = " ".join(str(p) for p in (body.get("last_name"), body.get("first_name")) if p)  # family name first
    return CustomerRecord(
        external_id=numeric_id(body.get("id")),
        email=str(body.get("email") or "").strip(),
        name=name,
        email_consent=isinstance(consent, dict) and str(consent.get("state") or "").lower() == "subscribed",
        points_balance=0,  # not in the payload: the stored balance stays (RecordsChanged.customer_points_known)
        updated_at=moment(body.get("updated_at") or body.get("created_at")),
    )


def product(payload: Any, shop_url: str, currency: str) -> ProductRecord:
    body = _object(payload, "product")
    variants = _list(body.get("variants"))
    prices = [money(v.get("price"), currency) for v in variants if v.get("price") is not None]
    tracked = [v for v in variants if v.get("inventory_quantity") is not None]
    handle = str(body.get("handle") or "")
    image = body.get("image") if isinstance(body.get("image"), dict) else (_list(body.get("images")) or [{}])[0]
    skus = [str(v.get("sku")) for v in variants if v.get("sku")]
    external_id = numeric_id(body.get("id"))
    return ProductRecord(
        external_id=external_id,
        code=skus[0] if skus else handle,
        group_code=handle or external_id,
        name=str(body.get("title") or ""),
        price=min(prices) if prices else 0,
        currency=currency,  # the shop's: a product payload names none
        stock=sum(max(0, int(v["inventory_quantity"])) for v in tracked) if tracked else None,
        category=str(body.get("product_type") or ""),
        url=f"{shop_url}/products/{handle}" if shop_url and handle else "",
        image_url=str((image or {}).get("src") or ""),
        visible=str(body.get("status") or "").lower() == "active",
        updated_at=moment(body.get("updated_at")),
    )


def order(payload: Any) -> OrderRecord:
    body = _object(payload, "order")
    currency = str(body.get("currency") or "JPY")
    buyer = body.get("customer") if isinstance(body.get("customer"), dict) else {}
    lines = [OrderLineRecord(product_external_id=numeric_id(line["product_id"]), name=str(line.get("name") or line.get("title") or ""),
                             unit_price=money(line.get("price"), currency), quantity=max(0, int(line.get("quantity") or 0)))
             for line in _list(body.get("line_items")) if line.get("product_id")]  # custom lines: nothing to recommend
    total = body.get("current_total_price", body.get("total_price"))
    return OrderRecord(
        external_id=numeric_id(body.get("id")),
        customer_external_id=numeric_id(buyer["id"]) if buyer and buyer.get("id") else None,
        ordered_at=moment(body.get("created_at")),
        updated_at=moment(body.get("updated_at") or body.get("created_at")),
        total=money(total, currency),
        currency=currency,
        canceled=bool(body.get("cancelled_at")),
        lines=lines,
    )


def _checkout_guest(body: dict[str, Any], email: str) -> CustomerRecord:
    """The buyer of a checkout without an account, keyed by email; their consent is the checkbox
    they ticked at checkout (`buyer_accepts_marketing`), their name the billing (or shipping) one."""
    address = next((a for a in (body.get("billing_address"), body.get("shipping_address")) if isinstance(a, dict)), {})
    name = " ".join(str(p) for p in (address.get("last_name"), address.get("first_name")) if p)  # family name first
    return CustomerRecord(
        external_id=guest_external_id(email), email=email, name=name,
        email_consent=body.get("buyer_accepts_marketing") is True, points_balance=0,
        updated_at=moment(body.get("updated_at") or body.get("created_at")), is_guest=True)


def checkout(payload: Any) -> CheckoutRecord:
    """A `checkouts/create|update` payload: the abandoned checkout and its recovery link."""
    body = _object(payload, "checkout")
    currency = str(body.get("currency") or body.get("presentment_currency") or "JPY")
    buyer = body.get("customer") if isinstance(body.get("customer"), dict) and body["customer"].get("id") else None
    record = customer({**buyer, "updated_at": buyer.get("updated_at") or body.get("updated_at")}) if buyer else None
    email = str(body.get("email") or "").strip()
    if record is not None and not record.email and email:
        record = CustomerRecord(**{**record.__dict__, "email": email})
    if record is None and "@" in email:  # a guest checkout: the buyer is known by the email they typed
        record = _checkout_guest(body, email)
    lines = tuple(CheckoutLineRecord(product_external_id=numeric_id(line["product_id"]),
                                     quantity=max(1, int(line.get("quantity") or 1)))
                  for line in _list(body.get("line_items")) if line.get("product_id"))
    return CheckoutRecord(
        external_id=numeric_id(body.get("id")),
        customer=record,
        recovery_url=str(body.get("abandoned_checkout_url") or ""),
        total=money(body.get("total_price"), currency),
        currency=currency,
        updated_at=moment(body.get("updated_at") or body.get("created_at")),
        completed=bool(body.get("completed_at")),
        lines=lines,
    )

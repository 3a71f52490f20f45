"""Webhooks signed like Shopify's, for the sandbox shop, tests and the end-to-end demo.

A delivery is a JSON body (the REST representation, snake_case) with Shopify's headers:
`X-Shopify-Hmac-Sha256` (base64 HMAC-SHA256 of the raw body under the app's client secret),
`X-Shopify-Topic`, `X-Shopify-Shop-Domain`, `X-Shopify-Webhook-Id` (the same on every retry),
`X-Shopify-Triggered-At`, `X-Shopify-API-Version` and `X-Shopify-Event-Id`. `post_webhook` sends
one to Okaeri's endpoint (`/shopify/webhooks`) through any httpx-compatible client (a FastAPI
TestClient included); the payload builders make the shapes the topics carry.
"""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from connectors.signatures import hmac_sha256_b64

__all__ = ["SignedDelivery", "sign_delivery", "post_webhook", "customer_payload", "product_payload", "order_payload",
           "checkout_payload", "inventory_payload", "data_request_payload", "customer_redact_payload",
           "shop_redact_payload", "ENDPOINT", "API_VERSION"]

ENDPOINT = "/shopify/webhooks"
API_VERSION = "2026-10"


class _Poster(Protocol):
    def post(self, url: str, *, content: bytes, headers: dict[str, str]) -> Any: ...


@dataclass(frozen=True)
class SignedDelivery:
    body: bytes
    headers: dict[str, str]


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def sign_delivery(topic: str, payload: dict[str, Any], *, shop: str, secret: str, webhook_id: str | None = None,
                  triggered_at: datetime | None = None, signature: str | None = None) -> SignedDelivery:
    """A delivery of `payload` for `topic`; `signature` overrides the real one (a forged delivery)."""
    body = json.dumps(payload, ensure_ascii=False).encode()
    headers = {
        "Content-Type": "application/json",
        "X-Shopify-Topic": topic,
        "X-Shopify-Shop-Domain": shop,
        "X-Shopify-Webhook-Id": webhook_id or str(uuid.uuid4()),
        "X-Shopify-Event-Id": str(uuid.uuid4()),
        "X-Shopify-Triggered-At": _iso(triggered_at or datetime.now(UTC)),
        "X-Shopify-API-Version": API_VERSION,
        "X-Shopify-Hmac-Sha256": signature if signature is not None else hmac_sha256_b64(secret, body),
    }
    return SignedDelivery(body, headers)


def post_webhook(client: _Poster, topic: str, payload: dict[str, Any], *, shop: str, secret: str,
                 base_url: str = "", **options: Any) -> Any:
    """Sign and post one delivery to Okaeri's webhook endpoint; returns the client's response."""
    delivery = sign_delivery(topic, payload, shop=shop, secret=secret, **options)
    return client.post(f"{base_url.rstrip('/')}{ENDPOINT}", content=delivery.body, headers=delivery.headers)


def customer_payload(number: int, updated_at: datetime, *, email: str | None = None, subscribed: bool = True,
                     first_name: str = "花子", last_name: str = "山田") -> dict[str, Any]:
    """`customers/create|update`: consent as `email_marketing_consent` (accepts_marketing is gone)."""
    return {"id": number, "email": email or f"customer{number}@example.jp", "first_name": first_name,
            "last_name": last_name, "created_at": _iso(updated_at), "updated_at": _iso(updated_at),
            "admin_graphql_api_id": f"gid://shopify/Customer/{number}",
            "email_marketing_consent": {"state": "subscribed" if subscribed else "unsubscribed",
                                        "opt_in_level": "single_opt_in", "consent_updated_at": _iso(updated_at)}}


def product_payload(number: int, updated_at: datetime, *, title: str = "煎茶", price: str = "1200.00",
                    stock: int | None = 10, status: str = "active") -> dict[str, Any]:
    """`products/update`: variants with price and (deprecated but still sent) inventory_quantity."""
    variant: dict[str, Any] = {"id": number * 10, "product_id": number, "sku": f"SEN-{number}", "price": price,
                               "inventory_item_id": number * 10}
    if stock is not None:
        variant["inventory_quantity"] = stock
    return {"id": number, "title": title, "handle": f"sencha-{number}", "status": status, "product_type": "お茶",
            "updated_at": _iso(updated_at), "admin_graphql_api_id": f"gid://shopify/Product/{number}",
            "image": {"src": f"https://cdn.shopify.com/s/files/sencha-{number}.jpg"}, "variants": [variant]}


def order_payload(number: int, customer: int | None, updated_at: datetime, *, products: tuple[int, ...] = (1,),
                  cancelled: bool = False, created_at: datetime | None = None) -> dict[str, Any]:
    lines = [{"id": number * 100 + i, "product_id": p, "variant_id": p * 10, "name": f"煎茶 {p}", "title": f"煎茶 {p}",
              "price": "1200.00", "quantity": 1} for i, p in enumerate(products)]
    return {"id": number, "created_at": _iso(created_at or updated_at), "updated_at": _iso(updated_at),
            "cancelled_at": _iso(updated_at) if cancelled else None, "currency": "JPY",
            "current_total_price": str(1200 * len(lines)), "total_price": str(1200 * len(lines)),
            "customer": {"id": customer, "email": f"customer{customer}@example.jp"} if customer else None,
            "line_items": lines, "admin_graphql_api_id": f"gid://shopify/Order/{number}"}


def checkout_payload(number: int, customer: int | None, updated_at: datetime, *, shop: str,
                     products: tuple[int, ...] = (1,), completed: bool = False, guest_email: str = "",
                     accepts_marketing: bool = False) -> dict[str, Any]:
    """`checkouts/create|update`: an abandoned checkout with its `abandoned_checkout_url`; without a
    customer, a guest's (`guest_email`, the marketing checkbox, a billing name)."""
    token = f"{number:032x}"
    buyer = customer_payload(customer, updated_at) if customer else None
    guest = {"buyer_accepts_marketing": accepts_marketing,
             "billing_address": {"last_name": "鈴木", "first_name": "一郎", "country_code": "JP"}} if guest_email else {}
    return {**guest, "id": number, "token": token, "cart_token": f"c{token[1:]}",
            "email": buyer["email"] if buyer else guest_email,
            "created_at": _iso(updated_at), "updated_at": _iso(updated_at),
            "completed_at": _iso(updated_at) if completed else None, "currency": "JPY",
            "total_price": str(1200 * len(products)),
            "abandoned_checkout_url": f"https://{shop}/1/checkouts/{token}/recover?key=k{number}",
            "line_items": [{"product_id": p, "variant_id": p * 10, "quantity": 1, "price": "1200.00", "title": f"煎茶 {p}"}
                           for p in products],
            "customer": buyer}


def inventory_payload(inventory_item: int, available: int, updated_at: datetime) -> dict[str, Any]:
    return {"inventory_item_id": inventory_item, "location_id": 1, "available": available, "updated_at": _iso(updated_at),
            "admin_graphql_api_id": f"gid://shopify/InventoryLevel/1?inventory_item_id={inventory_item}"}


def data_request_payload(shop: str, customer: int, email: str, request_id: int = 9999) -> dict[str, Any]:
    return {"shop_id": 1, "shop_domain": shop, "orders_requested": [],
            "customer": {"id": customer, "email": email, "phone": None}, "data_request": {"id": request_id}}


def customer_redact_payload(shop: str, customer: int, email: str) -> dict[str, Any]:
    return {"shop_id": 1, "shop_domain": shop, "customer": {"id": customer, "email": email, "phone": None},
            "orders_to_redact": []}


def shop_redact_payload(shop: str) -> dict[str, Any]:
    return {"shop_id": 1, "shop_domain": shop}

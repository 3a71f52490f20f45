"""One inbound Shopify webhook delivery: verified on the raw bytes, then described by its headers.

`X-Shopify-Hmac-Sha256` is the base64 HMAC-SHA256 of the raw body under the client secret; after a
secret rotation the previous secret may still sign for up to an hour, so both are tried. Nothing is
parsed before the signature holds. `X-Shopify-Webhook-Id` is the same across retries (the dedupe
key) and `X-Shopify-Triggered-At` tells an old retried payload from a newer one.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from connectors.errors import BadSignature
from connectors.shopify.shop_domain import InvalidShopDomain, parse_shop_domain
from connectors.signatures import verify_hmac_sha256_b64

__all__ = ["TOPICS", "COMPLIANCE_TOPICS", "WebhookDelivery", "verify_delivery", "MAX_BODY_BYTES"]

PLATFORM = "shopify"
MAX_BODY_BYTES = 2 * 1024 * 1024
COMPLIANCE_TOPICS = frozenset({"customers/data_request", "customers/redact", "shop/redact"})
TOPICS = frozenset({
    "app/uninstalled", "orders/create", "orders/updated", "checkouts/create", "checkouts/update",
    "products/update", "products/delete", "customers/create", "customers/update",
    "inventory_levels/update",
}) | COMPLIANCE_TOPICS


@dataclass(frozen=True)
class WebhookDelivery:
    topic: str
    shop: str
    webhook_id: str
    triggered_at: datetime | None
    api_version: str


def verify_delivery(body: bytes, headers: Mapping[str, str], secrets: Sequence[str]) -> WebhookDelivery:
    """Check the signature first (BadSignature → 401), then the headers (ValueError → 400)."""
    signature = headers.get("x-shopify-hmac-sha256")
    if len(body) > MAX_BODY_BYTES or not any(verify_hmac_sha256_b64(s, body, signature) for s in secrets if s):
        raise BadSignature("Shopify webhook signature does not verify", platform=PLATFORM, status=401)
    topic = headers.get("x-shopify-topic", "")
    if topic not in TOPICS:
        raise ValueError(f"unknown topic {topic[:40]!r}")
    try:
        shop = parse_shop_domain(headers.get("x-shopify-shop-domain"))
    except InvalidShopDomain as exc:
        raise ValueError("bad shop domain") from exc
    webhook_id = headers.get("x-shopify-webhook-id", "")
    if not webhook_id or len(webhook_id) > 100 or not webhook_id.isascii() or not webhook_id.isprintable():
        raise ValueError("missing webhook id")
    return WebhookDelivery(topic=topic, shop=shop, webhook_id=webhook_id,
                           triggered_at=_moment(headers.get("x-shopify-triggered-at")),
                           api_version=headers.get("x-shopify-api-version", "")[:20])


def _moment(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)

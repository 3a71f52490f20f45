"""Shopify's webhook topics: what arrives at the one endpoint, and what each topic changes.

In the request the descriptor checks the signature on the raw body first (`verify_delivery`, 401
on a bad one whatever the topic), then the headers; no payload is parsed. `app/uninstalled` is the
descriptor's own (the install lifecycle, at once); every other topic's handler (`topic_handlers`)
makes a `HookReceived` the generic intake stores once per `X-Shopify-Webhook-Id`, and a worker
later reads it with `read_hook` into neutral records (`webhook_mapping`) or a compliance request.

Topics and what they become:
- `orders/create|updated`, `products/update`, `customers/create|update`: records (older ones skipped);
- `products/delete`: the product closed; `inventory_levels/update`: its product re-read (stock);
- `checkouts/create|update`: the buyer's platform cart with its recovery URL;
- `customers/data_request`: an export; `customers/redact`, `shop/redact`: erasure.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from connectors.errors import BadResponse
from connectors.payloads import UnreadableJson, load_json
from connectors.platform import DataRequest, HookEffect, HookReceived, RecordsChanged, Redact, TopicDelivery, TopicHandler
from connectors.shopify import webhook_mapping as rest

__all__ = ["topic_handlers", "read_hook", "READERS"]

PLATFORM = "shopify"
Reader = Callable[[dict[str, Any], str, str], HookEffect]


def topic_handlers(platform: object) -> Mapping[str, TopicHandler]:
    """The descriptor's `webhook_topics` for every topic but `app/uninstalled` (the descriptor's own):
    each makes the verified delivery a `HookReceived` the generic intake stores and a worker applies."""
    return dict.fromkeys(READERS, _received)


def _received(delivery: TopicDelivery, body: bytes) -> HookReceived:
    return HookReceived(account=delivery.account, delivery_key=delivery.delivery_key, topic=delivery.topic,
                        body=body, triggered_at=delivery.triggered_at)


def read_hook(topic: str, body: bytes, *, shop_url: str, currency: str) -> HookEffect:
    """What a stored delivery changes; BadResponse when the payload is not the documented shape."""
    reader = READERS.get(topic)
    if reader is None:
        raise BadResponse(f"no reader for topic {topic[:40]!r}", platform=PLATFORM)
    try:
        payload = load_json(body)
    except UnreadableJson as exc:
        raise BadResponse(str(exc), platform=PLATFORM) from None
    if not isinstance(payload, dict):
        raise BadResponse("webhook payload is not an object", platform=PLATFORM)
    try:
        return reader(payload, shop_url, currency)
    except (KeyError, TypeError, ValueError) as exc:
        raise BadResponse(f"{topic} payload: {type(exc).__name__}: {str(exc)[:100]}", platform=PLATFORM) from None


def _customer(payload: dict[str, Any], shop_url: str, currency: str) -> HookEffect:
    return RecordsChanged(customers=(rest.customer(payload),), customer_points_known=False)


def _product(payload: dict[str, Any], shop_url: str, currency: str) -> HookEffect:
    return RecordsChanged(products=(rest.product(payload, shop_url, currency),))


def _product_deleted(payload: dict[str, Any], shop_url: str, currency: str) -> HookEffect:
    return RecordsChanged(deleted_products=(rest.numeric_id(payload.get("id")),))


def _order(payload: dict[str, Any], shop_url: str, currency: str) -> HookEffect:
    return RecordsChanged(orders=(rest.order(payload),))


def _checkout(payload: dict[str, Any], shop_url: str, currency: str) -> HookEffect:
    return RecordsChanged(checkouts=(rest.checkout(payload),), customer_points_known=False)


def _inventory(payload: dict[str, Any], shop_url: str, currency: str) -> HookEffect:
    """The level names an inventory item, not a product: the connector re-reads the product's stock."""
    return RecordsChanged(stale_products=(f"gid://shopify/InventoryItem/{rest.numeric_id(payload.get('inventory_item_id'))}",))


def _buyer(payload: dict[str, Any]) -> tuple[str, str]:
    buyer: dict[str, Any] = payload["customer"] if isinstance(payload.get("customer"), dict) else {}
    return (rest.numeric_id(buyer["id"]) if buyer.get("id") else "", str(buyer.get("email") or ""))


def _data_request(payload: dict[str, Any], shop_url: str, currency: str) -> HookEffect:
    customer_id, email = _buyer(payload)
    request: dict[str, Any] = payload["data_request"] if isinstance(payload.get("data_request"), dict) else {}
    return DataRequest(customer_external_id=customer_id, email=email, request_id=str(request.get("id") or ""))


def _customer_redact(payload: dict[str, Any], shop_url: str, currency: str) -> HookEffect:
    customer_id, email = _buyer(payload)
    if not customer_id and not email:
        raise BadResponse("customers/redact names no customer", platform=PLATFORM)
    return Redact(customer_external_id=customer_id, email=email)


def _shop_redact(payload: dict[str, Any], shop_url: str, currency: str) -> HookEffect:
    return Redact(whole_shop=True)


READERS: dict[str, Reader] = {
    "orders/create": _order, "orders/updated": _order,
    "checkouts/create": _checkout, "checkouts/update": _checkout,
    "products/update": _product, "products/delete": _product_deleted,
    "customers/create": _customer, "customers/update": _customer,
    "inventory_levels/update": _inventory,
    "customers/data_request": _data_request, "customers/redact": _customer_redact, "shop/redact": _shop_redact,
}

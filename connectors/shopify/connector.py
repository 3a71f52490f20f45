"""ShopifyConnector: one shop's sync through the GraphQL Admin API only.

First sync (`updated_since is None`) runs a **bulk operation** per resource — start it, poll it,
then stream its JSONL (`bulk.read_grouped`) so memory stays flat whatever the shop's size.
Incremental sync pages `sortKey: UPDATED_AT` queries from the cursor (minus an overlap, as
webhooks may have been missed); the store's upserts make a re-read harmless.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from connectors.base import CustomerRecord, OrderRecord, ProductRecord, ShopConnector, ShopInfo
from connectors.errors import BadResponse, ProviderDown
from connectors.shopify import mapping, queries
from connectors.shopify.bulk import BulkObject, gid_parts, read_grouped
from connectors.shopify.graphql import AccessDenied, GraphQLClient

__all__ = ["ShopifyConnector", "CURSOR_OVERLAP", "search_time"]

PLATFORM = "shopify"
CURSOR_OVERLAP = timedelta(minutes=10)
POLL_DELAYS = (1.0, 2.0, 3.0, 5.0, 10.0)  # then every 10 s
MAX_BULK_WAIT = 6 * 3600.0


def search_time(moment: datetime) -> str:
    """A time in Shopify search syntax (UTC, seconds)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ShopifyConnector(ShopConnector):
    platform = PLATFORM

    def __init__(self, client: GraphQLClient, now: datetime, *, download: httpx.Client | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.client = client
        self.now = now
        self._download = download or httpx.Client(timeout=httpx.Timeout(60.0, connect=10.0))
        self._sleep = sleep
        self._shop_url: str | None = None
        self._currency = "JPY"  # the shop's, once read: product prices carry none of their own
        self._point_fields = ""  # customer selections reading points from the merchant's metafields

    def close(self) -> None:
        self.client.close()
        self._download.close()

    def fetch_shop(self) -> ShopInfo:
        return self.shop_with_address()[0]

    def shop_with_address(self) -> tuple[ShopInfo, str]:
        shop = self.client.query(queries.SHOP).get("shop") or {}
        domain = str((shop.get("primaryDomain") or {}).get("url") or "").rstrip("/")
        info = ShopInfo(external_id=str(shop.get("myshopifyDomain") or ""), name=str(shop.get("name") or ""),
                        domain=domain, owner_email=str(shop.get("email") or ""),
                        timezone=str(shop.get("ianaTimezone") or "Asia/Tokyo"),
                        currency=str(shop.get("currencyCode") or "JPY"))
        if not info.external_id:
            raise BadResponse("Shopify's shop answer has no myshopifyDomain", platform=PLATFORM)
        self._shop_url, self._currency = domain, info.currency
        address = shop.get("billingAddress") or {}
        parts = [address.get("zip") and f"〒{address['zip']}", address.get("province"), address.get("city"),
                 address.get("address1"), address.get("address2")]
        return info, " ".join(str(p) for p in parts if p)

    def use_point_fields(self, balance_field: str, expiry_field: str = "") -> None:
        self._point_fields = queries.point_fields(balance_field, expiry_field)

    def iter_products_by_reference(self, references: tuple[str, ...]) -> Iterator[ProductRecord]:
        """Products of inventory items (`gid://shopify/InventoryItem/…`), as they are now."""
        if self._shop_url is None:
            self.fetch_shop()
        for reference in dict.fromkeys(references):
            item = self.client.query(queries.PRODUCT_OF_INVENTORY_ITEM, {"id": reference}).get("inventoryItem") or {}
            product = (item.get("variant") or {}).get("product")
            if isinstance(product, dict) and product.get("id"):
                yield mapping.product(BulkObject(product), self._shop_url or "", self._currency)

    def iter_customers(self, updated_since: datetime | None) -> Iterator[CustomerRecord]:
        for item in self._objects("customers", updated_since, None):
            yield mapping.customer(item.data)

    def iter_products(self, updated_since: datetime | None) -> Iterator[ProductRecord]:
        if self._shop_url is None:
            self.fetch_shop()
        for item in self._objects("products", updated_since, None):
            yield mapping.product(item, self._shop_url or "", self._currency)

    def iter_orders(self, updated_since: datetime | None, history_start: datetime) -> Iterator[OrderRecord]:
        for item in self._objects("orders", updated_since, history_start):
            yield mapping.order(item)

    # ------------------------------------------------------------------------------------

    def _objects(self, resource: str, updated_since: datetime | None,
                 created_after: datetime | None) -> Iterator[BulkObject]:
        extra = self._point_fields if resource == "customers" else ""
        if updated_since is None:
            search = f"created_at:>='{search_time(created_after)}'" if created_after else ""
            yield from self._bulk(queries.bulk_query(resource, search, extra))
            return
        yield from self._paged(resource, f"updated_at:>='{search_time(updated_since - CURSOR_OVERLAP)}'", extra)

    def _paged(self, resource: str, search: str, extra: str = "") -> Iterator[BulkObject]:
        after: str | None = None
        document = queries.paged_query(resource, extra)
        while True:
            page = self.client.query(document, {"after": after, "search": search},
                                     expected_cost=queries.paged_cost(resource)).get(resource) or {}
            for node in page.get("nodes") or []:
                if isinstance(node, dict):
                    yield BulkObject(node)
            info = page.get("pageInfo") or {}
            after = info.get("endCursor")
            if not info.get("hasNextPage") or not after:
                return

    def _bulk(self, query: str) -> Iterator[BulkObject]:
        started = self.client.query(queries.RUN_BULK, {"query": query}).get("bulkOperationRunQuery") or {}
        errors = started.get("userErrors") or []
        if errors:
            raise BadResponse("; ".join(str(e.get("message")) for e in errors)[:300], platform=PLATFORM)
        operation = started.get("bulkOperation") or {}
        gid_parts(operation.get("id"))
        url = self._await(str(operation["id"]))
        if url:
            yield from self._stream(url)

    def _await(self, operation_id: str) -> str | None:
        """Poll until the operation completes; its JSONL URL, or None when it found nothing."""
        waited, attempt = 0.0, 0
        while waited <= MAX_BULK_WAIT:
            node: dict[str, Any] = self.client.query(queries.BULK_STATUS, {"id": operation_id}).get("node") or {}
            status = node.get("status")
            if status == "COMPLETED":
                return str(node["url"]) if node.get("url") else None
            if status in ("FAILED", "CANCELED", "CANCELING", "EXPIRED"):
                code = str(node.get("errorCode") or status)
                if code == "ACCESS_DENIED":
                    raise AccessDenied("Shopify denied the bulk query (protected customer data or scopes)",
                                       platform=PLATFORM, status=403)
                raise ProviderDown(f"Shopify bulk operation {status.lower()}: {code}", platform=PLATFORM)
            delay = POLL_DELAYS[min(attempt, len(POLL_DELAYS) - 1)]
            self._sleep(delay)
            waited += delay
            attempt += 1
        raise ProviderDown("Shopify bulk operation did not finish in time", platform=PLATFORM)

    def _stream(self, url: str) -> Iterator[BulkObject]:
        try:
            with self._download.stream("GET", url) as response:
                if response.status_code != 200:
                    raise ProviderDown(f"bulk result download answered {response.status_code}", platform=PLATFORM,
                                       status=response.status_code)
                yield from read_grouped(response.iter_lines())
        except httpx.TransportError as exc:
            raise ProviderDown(f"bulk result download failed: {exc}", platform=PLATFORM) from exc

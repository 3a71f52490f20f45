"""A sandbox Shopify Admin API: the GraphQL shapes Okaeri's Shopify connector uses, metered.

Serves `POST /{shop}/admin/api/{version}/graphql.json` for the connector's own documents (shop,
paged customers/products/orders by `updated_at`, `bulkOperationRunQuery` and its status) and
`GET /{shop}/bulk/{id}.jsonl` (a grouped JSONL result, streamed). It is not a GraphQL engine: it
recognises the root field and the `first:` sizes of the documents in connectors/shopify/queries.py.

Cost is metered like Shopify's (PLATFORMS.md 2.4): a leaky bucket per shop (`maximum` points,
`restore` points per second × `time_scale`), a query's requested cost = 2 + first × (1 + nested
connection cost), taken up front and the unused part refunded; a query the bucket cannot pay
for answers HTTP 200 with `errors[].extensions.code = THROTTLED`. Every answer carries
`extensions.cost.throttleStatus`. Counters (`points_used`, `throttled`) are for benches.
"""
from __future__ import annotations

import base64
import json
import random
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

__all__ = ["ShopifySandboxShop", "CostBucket", "generate_shop", "create_shopify_sandbox_app"]

_ROOT = re.compile(r"\{\s*(customers|products|orders)\s*\(\s*first:\s*(\d+)")
_CHILD_FIRST = re.compile(r"(?:variants|lineItems)\s*\(\s*first:\s*(\d+)")
_BULK_ROOT = re.compile(r"\{\s*(customers|products|orders)\b")
_SINCE = re.compile(r"(updated_at|created_at):>='([0-9T:\-]+Z)'")
_METAFIELD = re.compile(r'(\w+): metafield\(namespace: "([\w-]+)", key: "([\w-]+)"\) \{ value \}')


@dataclass
class ShopifySandboxShop:
    domain: str
    token: str
    customers: list[dict[str, Any]] = field(default_factory=list)
    products: list[dict[str, Any]] = field(default_factory=list)  # each with "variants": [...]
    orders: list[dict[str, Any]] = field(default_factory=list)  # each with "lineItems": [...]
    web_pixel: dict[str, Any] | None = None  # the app's web pixel once webPixelCreate ran: {id, settings}
    # Tokens issued through the sandbox's OAuth (shopify_oauth.SandboxOAuth): token → expiry (monotonic).
    issued: dict[str, float] = field(default_factory=dict)

    def accepts(self, token: str) -> bool:
        """The fixed token, or one the sandbox's OAuth issued that has not expired or been replaced."""
        return bool(token) and (token == self.token or self.issued.get(token, 0.0) > time.monotonic())


class CostBucket:
    """Shopify's calculated-cost leaky bucket for one shop (thread-safe)."""

    def __init__(self, maximum: float, restore: float) -> None:
        self.maximum, self.restore = maximum, restore
        self._available, self._at = maximum, time.monotonic()
        self._lock = threading.Lock()
        self.points_used = 0.0
        self.throttled = 0
        self.started = time.monotonic()

    def _refill(self) -> None:
        now = time.monotonic()
        self._available = min(self.maximum, self._available + (now - self._at) * self.restore)
        self._at = now

    def take(self, requested: float) -> bool:
        with self._lock:
            self._refill()
            if self._available < requested:
                self.throttled += 1
                return False
            self._available -= requested
            return True

    def refund(self, points: float, used: float) -> None:
        with self._lock:
            self._available = min(self.maximum, self._available + points)
            self.points_used += used

    def status(self) -> dict[str, float]:
        with self._lock:
            self._refill()
            return {"maximumAvailable": self.maximum, "currentlyAvailable": round(self._available, 1),
                    "restoreRate": self.restore}


def _gid(kind: str, number: int) -> str:
    return f"gid://shopify/{kind}/{number}"


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def generate_shop(domain: str, token: str, *, customers: int = 200, products: int = 40, orders: int = 600,
                  now: datetime | None = None, seed: int = 7) -> ShopifySandboxShop:
    """A deterministic shop: customers (most subscribed), products with 1-3 variants, orders with 1-4 lines."""
    rng, now = random.Random(seed), now or datetime.now(UTC)
    shop = ShopifySandboxShop(domain, token)
    for n in range(1, customers + 1):
        shop.customers.append({"id": _gid("Customer", n), "email": f"customer{n}@example.jp", "firstName": "花子",
                               "lastName": f"山田{n}", "displayName": f"山田{n} 花子",
                               "updatedAt": _iso(now - timedelta(minutes=rng.randint(0, 60 * 24 * 365))),
                               "emailMarketingConsent": {"marketingState": "SUBSCRIBED" if rng.random() < 0.7
                                                         else "NOT_SUBSCRIBED"}})
    for n in range(1, products + 1):
        shop.products.append({"id": _gid("Product", n), "title": f"煎茶 {n}", "handle": f"sencha-{n}", "status": "ACTIVE",
                              "productType": "お茶", "updatedAt": _iso(now - timedelta(days=rng.randint(0, 300))),
                              "onlineStoreUrl": f"https://{domain}/products/sencha-{n}",
                              "featuredImage": {"url": f"https://cdn.shopify.com/s/files/sencha-{n}.jpg"},
                              "variants": [{"id": _gid("ProductVariant", n * 10 + v), "sku": f"SEN-{n}-{v}",
                                            "price": str(800 + 400 * v), "inventoryQuantity": rng.randint(0, 30)}
                                           for v in range(rng.randint(1, 3))]})
    for n in range(1, orders + 1):
        placed = now - timedelta(minutes=rng.randint(0, 60 * 24 * 365))
        lines = [{"id": _gid("LineItem", n * 10 + i), "name": f"煎茶 {p}", "quantity": rng.randint(1, 3),
                  "product": {"id": _gid("Product", p)},
                  "originalUnitPriceSet": {"shopMoney": {"amount": "1200.0", "currencyCode": "JPY"}}}
                 for i, p in enumerate(rng.sample(range(1, products + 1), rng.randint(1, min(4, products))))]
        shop.orders.append({"id": _gid("Order", n), "createdAt": _iso(placed), "updatedAt": _iso(placed),
                            "cancelledAt": None, "customer": {"id": _gid("Customer", rng.randint(1, customers))},
                            "currentTotalPriceSet": {"shopMoney": {"amount": str(1200 * len(lines)), "currencyCode": "JPY"}},
                            "lineItems": lines})
    for rows in (shop.customers, shop.products, shop.orders):
        rows.sort(key=lambda r: (r["updatedAt"], r["id"]))
    return shop


_CHILDREN = {"products": ("variants", "ProductVariant"), "orders": ("lineItems", "LineItem")}


def _matching(rows: list[dict[str, Any]], search: str) -> list[dict[str, Any]]:
    match = _SINCE.search(search or "")
    if not match:
        return rows
    key = "updatedAt" if match[1] == "updated_at" else "createdAt"
    return [r for r in rows if r[key] >= match[2]]


def _with_metafields(row: dict[str, Any], query: str) -> dict[str, Any]:
    """A customer row with the aliased metafields the query selects (`row["metafields"]` holds
    `{"namespace.key": value}`; a metafield the row lacks is null, as Shopify answers)."""
    selected = _METAFIELD.findall(query)
    if not selected:
        return {k: v for k, v in row.items() if k != "metafields"}
    held = row.get("metafields") or {}
    extra = {alias: ({"value": str(held[f"{ns}.{key}"])} if f"{ns}.{key}" in held else None) for alias, ns, key in selected}
    return {**{k: v for k, v in row.items() if k != "metafields"}, **extra}


def _variant_owner(shop: ShopifySandboxShop, item_gid: str) -> dict[str, Any] | None:
    """The product whose variant has this inventory item (the sandbox numbers an item as its variant)."""
    number = item_gid.rsplit("/", 1)[-1]
    for product in shop.products:
        if any(v["id"].rsplit("/", 1)[-1] == number for v in product.get("variants", [])):
            return product
    return None


def _node(row: dict[str, Any], resource: str, child_first: int, query: str = "") -> dict[str, Any]:
    if resource not in _CHILDREN:
        return _with_metafields(row, query) if resource == "customers" else row
    name, _ = _CHILDREN[resource]
    return {**{k: v for k, v in row.items() if k != name}, name: {"nodes": row[name][:child_first]}}


def create_shopify_sandbox_app(shops: dict[str, ShopifySandboxShop], *, maximum: float = 2000.0,
                               restore: float = 100.0, time_scale: float = 1.0) -> FastAPI:
    """The sandbox Admin API for `shops` (keyed by myshopify domain)."""
    app = FastAPI(title="Okaeri sandbox Shopify Admin API", openapi_url=None)
    buckets = {domain: CostBucket(maximum, restore * time_scale) for domain in shops}
    operations: dict[str, tuple[str, str, str, int]] = {}  # id → (shop, resource, search, polls)
    app.state.buckets = buckets

    def answer(bucket: CostBucket, data: dict[str, Any] | None, requested: float, actual: float) -> JSONResponse:
        cost = {"requestedQueryCost": requested, "actualQueryCost": actual, "throttleStatus": bucket.status()}
        return JSONResponse({"data": data, "extensions": {"cost": cost}})

    @app.post("/{domain}/admin/api/{version}/graphql.json")
    async def graphql(domain: str, version: str, request: Request) -> JSONResponse:
        shop = shops.get(domain)
        if shop is None or not shop.accepts(request.headers.get("x-shopify-access-token") or ""):
            return JSONResponse({"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"},
                                status_code=401)
        body = await request.json()
        query, variables = str(body.get("query") or ""), body.get("variables") or {}
        bucket = buckets[domain]
        root = _ROOT.search(query)
        child = _CHILD_FIRST.search(query)
        first, child_first = (int(root[2]), int(child[1]) if child else 0) if root else (0, 0)
        requested = 2 + first * (1 + (2 + child_first if child_first else 0)) if root else 10
        if not bucket.take(requested):
            status = bucket.status()
            return JSONResponse({"errors": [{"message": "Throttled", "extensions": {
                "code": "THROTTLED", "documentation": "https://shopify.dev/api/usage/rate-limits"}}],
                "extensions": {"cost": {"requestedQueryCost": requested, "actualQueryCost": None,
                                        "throttleStatus": status}}})
        if root:
            resource = root[1]
            rows = _matching(getattr(shop, resource), str(variables.get("search") or ""))
            try:
                start = int(base64.b64decode(str(variables["after"])).decode()) if variables.get("after") else 0
            except ValueError:
                return JSONResponse({"errors": [{"message": "Invalid cursor", "extensions": {"code": "BAD_REQUEST"}}]})
            page = rows[start:start + first]
            nodes = [_node(r, resource, child_first, query) for r in page]
            end = start + len(page)
            children = sum(len(r.get(_CHILDREN[resource][0], [])[:child_first]) for r in page) if resource in _CHILDREN else 0
            actual = 2 + len(page) + ((2 * len(page) + children) if child_first else 0)
            bucket.refund(requested - actual, actual)
            info = {"hasNextPage": end < len(rows), "endCursor": base64.b64encode(str(end).encode()).decode()}
            return answer(bucket, {resource: {"nodes": nodes, "pageInfo": info}}, requested, actual)
        bucket.refund(requested - 1, 1)
        if "bulkOperationRunQuery" in query:
            inner = str(variables.get("query") or "")
            bulk_root = _BULK_ROOT.search(inner)
            if bulk_root is None:
                return answer(bucket, {"bulkOperationRunQuery": {"bulkOperation": None, "userErrors": [
                    {"field": ["query"], "message": "Invalid bulk query: must contain a connection"}]}}, requested, 1)
            op_id = f"gid://shopify/BulkOperation/{len(operations) + 1000}"
            operations[op_id] = (domain, bulk_root[1], inner, 0)
            return answer(bucket, {"bulkOperationRunQuery": {"bulkOperation": {"id": op_id, "status": "CREATED"},
                                                             "userErrors": []}}, requested, 1)
        if "node(id:" in query:
            op_id = str(variables.get("id") or "")
            if op_id not in operations or operations[op_id][0] != domain:
                return answer(bucket, {"node": None}, requested, 1)
            owner, resource, inner, polls = operations[op_id]
            operations[op_id] = (owner, resource, inner, polls + 1)
            if polls == 0:
                return answer(bucket, {"node": {"id": op_id, "status": "RUNNING", "objectCount": "0"}}, requested, 1)
            # url_for, not base_url: the address stays right when the sandbox is mounted (the demo)
            url = str(request.url_for("bulk_result", domain=domain, number=op_id.rsplit('/', 1)[1]))
            return answer(bucket, {"node": {"id": op_id, "status": "COMPLETED", "objectCount": str(len(getattr(shop, resource))),
                                            "url": url if getattr(shop, resource) else None}}, requested, 1)
        if "inventoryItem(id:" in query:
            owner_product = _variant_owner(shop, str(variables.get("id") or ""))
            item = None if owner_product is None else {"id": variables["id"], "variant": {
                "product": _node(owner_product, "products", 20)}}
            return answer(bucket, {"inventoryItem": item}, requested, 1)
        if query.strip() == "{ webPixel { id settings } }":
            return answer(bucket, {"webPixel": dict(shop.web_pixel) if shop.web_pixel else None}, requested, 1)
        if "webPixelCreate" in query or "webPixelUpdate" in query:
            return answer(bucket, _web_pixel(shop, query, variables), requested, 1)
        if "shop {" in query or "shop{" in query:
            return answer(bucket, {"shop": {"id": "gid://shopify/Shop/1", "name": "サンドボックス茶舗",
                                            "myshopifyDomain": domain, "email": f"owner@{domain}", "currencyCode": "JPY",
                                            "ianaTimezone": "Asia/Tokyo", "primaryDomain": {"url": f"https://{domain}"},
                                            "billingAddress": {"zip": "150-0043", "province": "東京都", "city": "渋谷区",
                                                               "address1": "道玄坂1-2-3"}}}, requested, 1)
        return JSONResponse({"errors": [{"message": "sandbox: unsupported document"}]}, status_code=200)

    @app.get("/{domain}/_stats")
    def stats(domain: str) -> JSONResponse:
        """What the budget saw (benches): points used, queries refused, seconds since start."""
        bucket = buckets.get(domain)
        if bucket is None:
            return JSONResponse({"error": "unknown shop"}, status_code=404)
        return JSONResponse({"points_used": bucket.points_used, "throttled": bucket.throttled,
                             "available": bucket.status()["currentlyAvailable"],
                             "maximum": bucket.maximum, "restore": bucket.restore,
                             "seconds": time.monotonic() - bucket.started})

    @app.get("/{domain}/bulk/{number}.jsonl")
    def bulk_result(domain: str, number: int) -> Response:
        operation = operations.get(f"gid://shopify/BulkOperation/{number}")
        if operation is None or operation[0] != domain:
            return Response(status_code=404)
        owner, resource, inner, _ = operation
        shop = shops[owner]

        def lines() -> Iterator[bytes]:
            for row in _matching(getattr(shop, resource), inner):
                children = _CHILDREN.get(resource)
                parent = {k: v for k, v in row.items() if not children or k != children[0]}
                if resource == "customers":
                    parent = _with_metafields(parent, inner)
                yield (json.dumps(parent, ensure_ascii=False) + "\n").encode()
                if children:
                    for item in row[children[0]]:
                        yield (json.dumps({**item, "__parentId": row["id"]}, ensure_ascii=False) + "\n").encode()

        return StreamingResponse(lines(), media_type="application/jsonl")

    return app


def _web_pixel(shop: ShopifySandboxShop, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    """webPixelCreate (one pixel per app and shop: a second create is TAKEN) and webPixelUpdate."""
    settings = str(((variables.get("webPixel") or {}).get("settings")) or "")
    try:
        parsed = json.loads(settings)
    except ValueError:
        parsed = None
    root = "webPixelCreate" if "webPixelCreate" in query else "webPixelUpdate"
    if not isinstance(parsed, dict) or not isinstance(parsed.get("eventUrl"), str):
        return {root: {"webPixel": None, "userErrors": [{"field": ["settings"], "message": "Invalid settings",
                                                         "code": "INVALID_SETTINGS"}]}}
    if root == "webPixelCreate" and shop.web_pixel is not None:
        return {root: {"webPixel": None, "userErrors": [{"field": [], "message": "Web pixel is taken", "code": "TAKEN"}]}}
    if root == "webPixelUpdate" and (shop.web_pixel is None or variables.get("id") != shop.web_pixel["id"]):
        return {root: {"webPixel": None, "userErrors": [{"field": ["id"], "message": "Not found", "code": "NOT_FOUND"}]}}
    shop.web_pixel = {"id": "gid://shopify/WebPixel/1", "settings": settings}
    return {root: {"webPixel": dict(shop.web_pixel), "userErrors": []}}

"""The Shopify connector against the sandbox Admin API over real HTTP: a first sync by bulk
operation and an incremental sync under a cost budget small enough to throttle — every record
arrives exactly once, and throttling slows the sync instead of failing it."""
from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from connectors.shopify.connector import ShopifyConnector
from connectors.shopify.graphql import GraphQLClient
from plugin.demo.mailcatcher import free_port
from plugin.demo.sandbox.shopify_admin import create_shopify_sandbox_app, generate_shop
from tests.live import serve

DOMAIN, TOKEN = "sandbox-tea.myshopify.com", "shpat_sandbox"
NOW = datetime(2026, 12, 2, 4, 0, tzinfo=UTC)


@pytest.fixture
def sandbox() -> Iterator[tuple[str, object]]:
    shop = generate_shop(DOMAIN, TOKEN, customers=230, products=30, orders=120, now=NOW)
    # A bucket of 700 points restoring 2,000/s: a 577-point order page fits once, then throttles
    app = create_shopify_sandbox_app({DOMAIN: shop}, maximum=700, restore=2000)
    port = free_port()
    with serve(app, port):
        yield f"http://127.0.0.1:{port}", app


def _connector(base: str, token: str = TOKEN) -> ShopifyConnector:
    client = GraphQLClient(DOMAIN, lambda: token, api_base=f"{base}/{DOMAIN}")
    return ShopifyConnector(client, NOW)


def test_a_first_sync_by_bulk_operation_brings_every_record_once(sandbox) -> None:  # type: ignore[no-untyped-def]
    base, _ = sandbox
    connector = _connector(base)
    customers = [c.external_id for c in connector.iter_customers(None)]
    products = list(connector.iter_products(None))
    orders = list(connector.iter_orders(None, NOW - timedelta(days=800)))
    assert len(customers) == len(set(customers)) == 230
    assert len(products) == 30 and all(p.price >= 800 and p.url.startswith("https://") for p in products)
    assert len(orders) == 120 and all(1 <= len(o.lines) <= 4 for o in orders)


def test_an_incremental_sync_under_a_small_budget_is_throttled_but_complete(sandbox) -> None:  # type: ignore[no-untyped-def]
    base, app = sandbox
    connector = _connector(base)
    since = NOW - timedelta(days=200)
    orders = [o.external_id for o in connector.iter_orders(since, NOW - timedelta(days=800))]
    customers = [c.external_id for c in connector.iter_customers(since)]
    shop = generate_shop(DOMAIN, TOKEN, customers=230, products=30, orders=120, now=NOW)
    cutoff = (since - timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert sorted(orders, key=int) == sorted((o["id"].rsplit("/", 1)[1] for o in shop.orders if o["updatedAt"] >= cutoff), key=int)
    assert len(customers) == len(set(customers)) == sum(1 for c in shop.customers if c["updatedAt"] >= cutoff)
    # the budget held pages back (the client waited for the bucket) and nothing failed
    assert connector.client.waited > 0, (app.state.buckets[DOMAIN].throttled, connector.client.waited)


def test_a_wrong_token_is_refused_as_unauthorized(sandbox) -> None:  # type: ignore[no-untyped-def]
    from connectors.errors import Unauthorized

    base, _ = sandbox
    with pytest.raises(Unauthorized):
        _connector(base, token="shpat_revoked").fetch_shop()

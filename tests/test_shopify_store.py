"""The store half of a Shopify first sync (issue 15 item 4): bulk operations' grouped JSONL — customers
with their marketing consent, products with variants and inventory, orders with line items — written
in batches through the sync store, from the sandbox Admin API."""
from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import func, select
from sqlmodel import col

from plugin.demo.sandbox.shopify_admin import ShopifySandboxShop, generate_shop
from plugin.runtime import Runtime
from plugin.storage.models import ConsentRecord, Customer, Order, OrderLine, Product, Shop, SyncState
from plugin.sync.run import run_sync
from tests.shopify_support import SHOP, SandboxShopify, shopify_runtime, shopify_shop


@pytest.fixture
def synced(settings, engine, clock, broker, session) -> Iterator[tuple[Runtime, Shop, ShopifySandboxShop]]:  # type: ignore[no-untyped-def]
    runtime = shopify_runtime(settings, engine, clock, broker)
    shop = shopify_shop(session, clock.now())
    # more of each than one batch (500) holds
    sandbox = generate_shop(SHOP, "shpat_sandbox", customers=1_200, products=30, orders=1_100, now=clock.now())
    SandboxShopify.sandbox = sandbox
    yield runtime, shop, sandbox
    runtime.close_channels()


def _count(session, model, *where) -> int:  # type: ignore[no-untyped-def]
    return session.execute(select(func.count()).select_from(model).where(*where)).scalar_one()


def test_a_first_sync_stores_every_bulk_line_in_batches(synced, session) -> None:  # type: ignore[no-untyped-def]
    runtime, shop, sandbox = synced
    batches: list[tuple[str, int]] = []
    # When the first sync runs (bulk operations: their JSONL streamed, parents followed by children)
    counts = run_sync(runtime, shop.id or 0, full=True, progress=lambda resource, done, total: batches.append((resource, done)))
    # Then every customer, product and order is stored, with every order line, batch by batch
    assert counts == {"customers": 1_200, "products": 30, "orders": 1_100}
    assert [done for resource, done in batches if resource == "customers"] == [500, 1_000, 1_200]
    lines = sum(len(o["lineItems"]) for o in sandbox.orders)
    assert (_count(session, Customer), _count(session, Product), _count(session, Order), _count(session, OrderLine)) == (
        1_200, 30, 1_100, lines)
    assert _count(session, OrderLine, col(OrderLine.product_id).is_(None)) == 0  # lines point at synced products


def test_marketing_consent_arrives_with_a_consent_record_per_subscribed_address(synced, session) -> None:  # type: ignore[no-untyped-def]
    runtime, shop, sandbox = synced
    run_sync(runtime, shop.id or 0, full=True)
    subscribed = {c["email"] for c in sandbox.customers if c["emailMarketingConsent"]["marketingState"] == "SUBSCRIBED"}
    consented = set(session.execute(select(Customer.email).where(col(Customer.email_consent).is_(True))).scalars())
    recorded = set(session.execute(select(ConsentRecord.address).where(col(ConsentRecord.consented).is_(True))).scalars())
    assert consented == recorded == subscribed
    assert 0 < len(subscribed) < 1_200


def test_a_products_stock_is_the_sum_of_its_variants_inventory(synced, session) -> None:  # type: ignore[no-untyped-def]
    runtime, shop, sandbox = synced
    run_sync(runtime, shop.id or 0, full=True)
    stored = dict(session.execute(select(Product.external_id, Product.stock)).tuples().all())
    for product in sandbox.products:
        number = product["id"].rsplit("/", 1)[1]
        assert stored[number] == sum(max(0, v["inventoryQuantity"]) for v in product["variants"]), number


def test_a_second_full_sync_changes_nothing_and_moves_the_cursors(synced, session, clock) -> None:  # type: ignore[no-untyped-def]
    runtime, shop, sandbox = synced
    run_sync(runtime, shop.id or 0, full=True)
    before = (_count(session, Customer), _count(session, OrderLine), _count(session, ConsentRecord))
    clock.advance(hours=1)
    run_sync(runtime, shop.id or 0, full=True)
    assert (_count(session, Customer), _count(session, OrderLine), _count(session, ConsentRecord)) == before
    cursors = session.execute(select(SyncState.resource, SyncState.cursor)).tuples().all()
    assert {resource for resource, cursor in cursors if cursor is not None} == {"customers", "products", "orders"}


def test_a_product_the_bulk_export_no_longer_lists_is_closed(synced, session, clock) -> None:  # type: ignore[no-untyped-def]
    runtime, shop, sandbox = synced
    run_sync(runtime, shop.id or 0, full=True)
    gone = sandbox.products.pop()
    clock.advance(hours=1)
    run_sync(runtime, shop.id or 0, full=True)
    product = session.execute(select(Product).where(col(Product.external_id) == gone["id"].rsplit("/", 1)[1])).scalar_one()
    session.refresh(product)
    assert (product.visible, product.deleted_at is not None) == (False, True)

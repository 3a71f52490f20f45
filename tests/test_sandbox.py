"""The sandbox shop is realistic enough to demo on and the same for the same seed."""
from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from plugin.demo.sandbox.seed import generate

NOW = datetime(2026, 11, 20, tzinfo=UTC)


def test_same_seed_gives_the_same_shop() -> None:
    assert generate(42, NOW, "http://s") == generate(42, NOW, "http://s")
    assert generate(42, NOW, "http://s").sales != generate(43, NOW, "http://s").sales


def test_shop_has_enough_customers_products_and_a_year_of_repeat_orders() -> None:
    shop = generate(42, NOW, "http://s")
    assert len(shop.customers) >= 500 and len(shop.products) >= 200
    days = (max(s["make_date"] for s in shop.sales) - min(s["make_date"] for s in shop.sales)) / 86400
    assert days > 330
    per_customer = Counter(s["customer"]["id"] for s in shop.sales)
    assert sum(1 for n in per_customer.values() if n >= 2) >= 100  # repeat buyers
    assert sum(1 for c in shop.customers if c["points"] > 0) >= 100
    assert any(p["stock_managed"] and p["stocks"] == 0 for p in shop.products)

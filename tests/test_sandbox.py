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


def test_every_product_picture_is_served_by_the_sandbox_itself() -> None:
    from urllib.parse import urlsplit

    from fastapi.testclient import TestClient

    from plugin.demo.sandbox.app import SandboxConfig, create_sandbox_app

    # Given the sandbox shop as the demo mounts it
    data = generate(42, NOW, "http://127.0.0.1:8000/sandbox/store")
    client = TestClient(create_sandbox_app(data, SandboxConfig("http://okaeri.test", "cid", "cs", "wh")))
    pictures = {p["image_url"] for p in data.products}
    # Then no picture lives on another host, and each one is a small PNG of its own
    assert {urlsplit(url).netloc for url in pictures} == {"127.0.0.1:8000"}
    assert len(pictures) == len(data.products)
    for product in data.products[:20]:
        answer = client.get(urlsplit(product["image_url"]).path.removeprefix("/sandbox"))
        assert answer.status_code == 200 and answer.headers["content-type"] == "image/png"
        assert answer.content.startswith(b"\x89PNG") and len(answer.content) < 4096
    assert client.get("/store/images/1.png").status_code == 404


def test_the_mounted_sandbox_api_answers_only_with_a_token() -> None:
    """As the demo mounts it under /sandbox, the shop's customers are not readable by a stranger."""
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from plugin.demo.sandbox.app import SandboxConfig, create_sandbox_app

    data = generate(42, NOW, "http://127.0.0.1:8000/sandbox/store")
    config = SandboxConfig("http://okaeri.test", "cid", "cs", "wh", tokens={"good-token"})
    app = FastAPI()
    app.mount("/sandbox", create_sandbox_app(data, config))
    client = TestClient(app)
    for path in ("/sandbox/v1/customers.json", "/sandbox/v1/sales.json", "/sandbox/appstore/v1/script_tags.json"):
        assert client.get(path).status_code == 401
        assert client.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 401
    answer = client.get("/sandbox/v1/customers.json", headers={"Authorization": "Bearer good-token"})
    assert answer.status_code == 200 and answer.json()["customers"]

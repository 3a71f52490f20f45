"""Basket and view beacons from the storefront script."""
from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from plugin.storage.models import BrowseEvent, Cart, CartLine
from plugin.web.app import create_app
from tests.factories import make_customer, make_product, make_shop


def _setup(runtime, session, clock):  # type: ignore[no-untyped-def]
    shop = make_shop(session, clock.now())
    customer = make_customer(session, shop, clock.now())
    product = make_product(session, shop, clock.now())
    return TestClient(create_app(runtime)), shop, customer, product


def test_basket_beacon_creates_the_customers_cart(runtime, session, clock) -> None:  # type: ignore[no-untyped-def]
    client, shop, customer, product = _setup(runtime, session, clock)
    body = {"type": "basket", "customer_id": customer.external_id, "cart_url": "https://s/cart/",
            "items": [{"id": product.external_id, "quantity": 2, "price": 1200}]}
    answer = client.post(f"/events/colorme/{shop.event_key}", json=body)
    assert answer.status_code == 202 and answer.headers["access-control-allow-origin"] == "*"
    cart = session.execute(select(Cart)).scalar_one()
    assert cart.customer_id == customer.id and cart.total == 2400
    assert session.execute(select(CartLine.product_id, CartLine.quantity)).all() == [(product.id, 2)]


def test_same_basket_seen_again_is_not_new_activity(runtime, session, clock) -> None:  # type: ignore[no-untyped-def]
    client, shop, customer, product = _setup(runtime, session, clock)
    body = {"type": "basket", "customer_id": customer.external_id,
            "items": [{"id": product.external_id, "quantity": 1, "price": 1200}]}
    client.post(f"/events/colorme/{shop.event_key}", json=body)
    first = session.execute(select(Cart.updated_at)).scalar_one()
    clock.advance(hours=1)
    assert client.post(f"/events/colorme/{shop.event_key}", json=body).json()["result"] == "basket unchanged"
    session.expire_all()
    assert session.execute(select(Cart.updated_at)).scalar_one() == first


def test_product_view_is_recorded(runtime, session, clock) -> None:  # type: ignore[no-untyped-def]
    client, shop, customer, product = _setup(runtime, session, clock)
    body = {"type": "product_view", "customer_id": customer.external_id, "product_id": product.external_id}
    assert client.post(f"/events/colorme/{shop.event_key}", json=body).status_code == 202
    assert session.execute(select(BrowseEvent.product_id)).scalar_one() == product.id


def test_bad_events_get_a_clear_4xx_and_store_nothing(runtime, session, clock) -> None:  # type: ignore[no-untyped-def]
    client, shop, customer, _ = _setup(runtime, session, clock)
    url = f"/events/colorme/{shop.event_key}"
    assert client.post(url, content=b"{not json").status_code == 422
    assert client.post(url, json={"type": "teleport", "customer_id": "1"}).status_code == 422
    unknown = client.post(url, json={"type": "basket", "customer_id": "999999", "items": []})
    assert unknown.status_code == 422 and "not known" in unknown.json()["error"]
    wrong_key = client.post("/events/colorme/wrong-key", json={"type": "basket", "customer_id": customer.external_id})
    assert wrong_key.status_code == 404
    assert session.execute(select(Cart)).first() is None

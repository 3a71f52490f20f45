"""The Shopify web pixel (issue 15 item 6): an extension that sends product views, cart additions and
completed checkouts to Okaeri's event endpoint only with the visitor's consent; its beacons read as
untrusted events under issue 6's identity rules; activated per shop with webPixelCreate."""
from __future__ import annotations

import json
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlmodel import col

from connectors.errors import BadResponse
from connectors.shopify.graphql import GraphQLClient
from connectors.shopify.pixel_activation import CREATE, activate_pixel
from connectors.shopify.pixel_events import parse_event
from connectors.storefront import InvalidEvent
from plugin.demo.sandbox.shopify_admin import ShopifySandboxShop, create_shopify_sandbox_app
from plugin.measurement.links import visitor_proof
from plugin.runtime import Runtime
from plugin.storage.models import BrowseEvent, Cart, CartLine, Shop, ThanksPageOrder
from plugin.web.app import create_app
from tests.factories import make_customer, make_product
from tests.shopify_support import SHOP, TOKEN, shopify_runtime, shopify_shop

PIXEL = Path(__file__).resolve().parents[1] / "connectors" / "shopify" / "pixel"
VISITOR = "0d6f4f5e-7a1b-4c2d-9e3f-5a6b7c8d9e0f"  # Shopify's clientId shape
ALLOWED = {"analyticsProcessingAllowed": True, "marketingAllowed": True, "preferencesProcessingAllowed": False,
           "saleOfDataAllowed": False}


# The extension -------------------------------------------------------------------------------

def test_the_extension_declares_the_consent_it_needs_and_its_one_setting() -> None:
    toml = tomllib.loads((PIXEL / "shopify.extension.toml").read_text())
    assert (toml["type"], toml["runtime_context"]) == ("web_pixel_extension", "strict")
    assert toml["customer_privacy"]["analytics"] is True and toml["customer_privacy"]["marketing"] is True
    assert list(toml["settings"]["fields"]) == ["eventUrl"]
    assert toml["settings"]["fields"]["eventUrl"]["type"] == "single_line_text_field"


def _run_pixel(tmp_path: Path, script: str) -> list[dict]:  # type: ignore[type-arg]
    """Run the pixel in Node with a stand-in for Shopify's runtime; returns the beacons it sent."""
    if shutil.which("node") is None:
        pytest.skip("node is not installed")
    package = tmp_path / "node_modules" / "@shopify" / "web-pixels-extension"
    package.mkdir(parents=True)
    (package / "package.json").write_text(json.dumps({"name": "@shopify/web-pixels-extension", "type": "module",
                                                      "main": "index.js"}))
    (package / "index.js").write_text("export function register(fn) { globalThis.__pixel = fn; }\n")
    (tmp_path / "package.json").write_text(json.dumps({"type": "module"}))
    shutil.copy(PIXEL / "src" / "index.js", tmp_path / "pixel.js")
    (tmp_path / "run.js").write_text("""
import './pixel.js';
const handlers = {}, consent = [], sent = [];
const api = {
  analytics: {subscribe: (name, fn) => { handlers[name] = fn; }},
  browser: {sendBeacon: (url, body) => { sent.push({url, body: JSON.parse(body)}); return Promise.resolve(true); }},
  customerPrivacy: {subscribe: (name, fn) => { consent.push(fn); }},
  settings: {eventUrl: 'https://okaeri.example/events/shopify/key-1'},
  init: INIT,
};
globalThis.__pixel(api);
const fire = (name, data) => handlers[name] && handlers[name]({name, clientId: '%s', timestamp: '2026-11-20T03:00:00.000Z', data});
const consentChanged = (privacy) => consent.forEach((fn) => fn({customerPrivacy: privacy}));
SCRIPT
console.log(JSON.stringify(sent));
""".replace("%s", VISITOR).replace("SCRIPT", script).replace("INIT", json.dumps({
        "customerPrivacy": ALLOWED, "data": {"customer": {"id": "7"}, "cart": {"lines": [
            {"quantity": 1, "merchandise": {"product": {"id": "2"}}}]}},
        "context": {"document": {"location": {"href": f"https://{SHOP}/products/sencha-1?okaeri_proof=abc.DEF-1"}}}})))
    out = subprocess.run(["node", "run.js"], cwd=tmp_path, capture_output=True, text=True, timeout=30, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_pixel_sends_the_three_events_with_ids_only(tmp_path: Path) -> None:
    sent = _run_pixel(tmp_path, """
fire('product_viewed', {productVariant: {id: '10', price: {amount: 1200}, product: {id: '1', title: '煎茶', url: '/x'}}});
fire('product_added_to_cart', {cartLine: {quantity: 2, merchandise: {id: '10', product: {id: '1'}}}});
fire('checkout_completed', {checkout: {order: {id: '5001'}, totalPrice: {amount: 3600}}});
fire('page_viewed', {});
""")
    bodies = [s["body"] for s in sent]
    assert {s["url"] for s in sent} == {"https://okaeri.example/events/shopify/key-1"}
    assert [b["type"] for b in bodies] == ["product_view", "basket", "purchase"]
    assert bodies[0] == {"visitor": VISITOR, "customer_id": "7", "proof": "abc.DEF-1", "occurred_at": 1795143600,
                         "type": "product_view", "product_id": "1"}
    assert bodies[1]["items"] == [{"id": "2", "quantity": 1}, {"id": "1", "quantity": 2}]  # the whole cart
    assert bodies[2]["order_id"] == "5001"
    assert all("price" not in json.dumps(b) and "title" not in json.dumps(b) for b in bodies)
    for body in bodies:  # what the pixel sends is what the descriptor reads
        parse_event(json.dumps(body).encode())


def test_the_pixel_sends_nothing_once_the_visitor_withdraws_consent(tmp_path: Path) -> None:
    sent = _run_pixel(tmp_path, """
fire('product_viewed', {productVariant: {product: {id: '1'}}});
consentChanged({analyticsProcessingAllowed: true, marketingAllowed: false});
fire('product_viewed', {productVariant: {product: {id: '2'}}});
fire('checkout_completed', {checkout: {order: {id: '5001'}}});
consentChanged({analyticsProcessingAllowed: true, marketingAllowed: true});
fire('product_viewed', {productVariant: {product: {id: '3'}}});
""")
    assert [s["body"].get("product_id") for s in sent] == ["1", "3"]


# The descriptor's parser ------------------------------------------------------------------------

@pytest.mark.parametrize("body, reason", [
    (b"not json", "not JSON"),
    (json.dumps({"type": "product_view", "visitor": "short"}).encode(), "visitor"),
    (json.dumps({"type": "product_view", "visitor": VISITOR}).encode(), "product_id"),
    (json.dumps({"type": "purchase", "visitor": VISITOR}).encode(), "order_id"),
    (json.dumps({"type": "basket", "visitor": VISITOR, "items": []}).encode(), "items"),
    (json.dumps({"type": "product_view", "visitor": VISITOR, "product_id": "1; DROP"}).encode(), "product_id"),
    (json.dumps({"type": "refund", "visitor": VISITOR}).encode(), "type"),
])
def test_a_beacon_that_is_not_an_event_is_refused_with_a_reason(body: bytes, reason: str) -> None:
    with pytest.raises(InvalidEvent, match=reason):
        parse_event(body)


# Through the event endpoint ---------------------------------------------------------------------

@pytest.fixture
def storefront(settings, engine, clock, broker, session) -> Iterator[tuple[TestClient, Runtime, Shop]]:  # type: ignore[no-untyped-def]
    runtime = shopify_runtime(settings, engine, clock, broker)
    shop = shopify_shop(session, clock.now())
    yield TestClient(create_app(runtime)), runtime, shop
    runtime.close_channels()


def _post(client: TestClient, shop: Shop, **fields: object) -> httpx.Response:
    body = json.dumps({"visitor": VISITOR, **fields})
    return client.post(f"/events/shopify/{shop.event_key}", content=body, headers={"Content-Type": "text/plain"})


def test_a_logged_in_customers_view_and_cart_are_recorded(storefront, session, clock) -> None:  # type: ignore[no-untyped-def]
    client, _, shop = storefront
    customer = make_customer(session, shop, clock.now(), external_id="7")
    product = make_product(session, shop, clock.now(), external_id="1")
    assert _post(client, shop, type="product_view", customer_id="7", product_id="1").status_code == 202
    assert _post(client, shop, type="basket", customer_id="7", items=[{"id": "1", "quantity": 2}]).status_code == 202
    views = session.execute(select(BrowseEvent.product_id).where(col(BrowseEvent.customer_id) == customer.id)).scalars().all()
    cart = session.execute(select(Cart).where(col(Cart.customer_id) == customer.id)).scalar_one()
    quantity = session.execute(select(CartLine.quantity).where(col(CartLine.cart_id) == cart.id)).scalar_one()
    assert (views, cart.source, quantity) == ([product.id], "storefront", 2)
    assert cart.recovery_url == f"https://{SHOP}/cart"  # the shop's own cart page, never a link from the event


def test_an_anonymous_visitor_changes_nothing(storefront, session, clock) -> None:  # type: ignore[no-untyped-def]
    client, _, shop = storefront
    make_product(session, shop, clock.now(), external_id="1")
    assert _post(client, shop, type="product_view", product_id="1").status_code == 202
    assert session.execute(select(func.count()).select_from(BrowseEvent)).scalar_one() == 0


def test_a_pixel_basket_never_touches_the_checkout_cart_shopify_reported(storefront, session, clock) -> None:  # type: ignore[no-untyped-def]
    client, _, shop = storefront
    customer = make_customer(session, shop, clock.now(), external_id="7")
    make_product(session, shop, clock.now(), external_id="1")
    session.add(Cart(shop_id=shop.id, external_key="customer:7", customer_id=customer.id, source="platform",
                     recovery_url=f"https://{SHOP}/1/checkouts/abc/recover", created_at=clock.now(),
                     updated_at=clock.now() - timedelta(hours=2)))
    session.commit()
    _post(client, shop, type="basket", customer_id="7", items=[{"id": "1", "quantity": 1}])
    assert session.execute(select(func.count()).select_from(CartLine)).scalar_one() == 0


def test_a_completed_checkout_counts_only_with_okaeris_own_proof(storefront, session, clock) -> None:  # type: ignore[no-untyped-def]
    client, runtime, shop = storefront
    customer = make_customer(session, shop, clock.now(), external_id="7")
    # A checkout_completed the page alone reports is not kept (it could attribute nothing)
    assert _post(client, shop, type="purchase", order_id="5001").status_code == 202
    assert session.execute(select(func.count()).select_from(ThanksPageOrder)).scalar_one() == 0
    # One from a visitor who came through Okaeri's signed mail link is kept, to match the synced order
    proof = visitor_proof(runtime, shop.id or 0, customer.id or 0, clock.now())
    assert _post(client, shop, type="purchase", order_id="5002", proof=proof).status_code == 202
    assert session.execute(select(ThanksPageOrder.order_external_id)).scalar_one() == "5002"


def test_a_malformed_beacon_gets_422_with_the_reason(storefront) -> None:  # type: ignore[no-untyped-def]
    client, _, shop = storefront
    response = _post(client, shop, type="product_view")
    assert response.status_code == 422 and "product_id" in response.json()["error"]


# Activation -------------------------------------------------------------------------------------

def _client(sandbox: ShopifySandboxShop) -> GraphQLClient:
    transport = TestClient(create_shopify_sandbox_app({SHOP: sandbox}))._transport
    return GraphQLClient(SHOP, lambda: TOKEN, transport=transport, api_base=f"http://sandbox/{SHOP}", sleep=lambda _: None)


def test_install_activates_the_pixel_with_the_shops_event_url() -> None:
    sandbox = ShopifySandboxShop(SHOP, TOKEN)
    pixel_id = activate_pixel(_client(sandbox), "https://okaeri.example/events/shopify/key-1")
    assert sandbox.web_pixel == {"id": pixel_id, "settings": '{"eventUrl": "https://okaeri.example/events/shopify/key-1"}'}


def test_activating_again_updates_the_shops_one_pixel_in_place() -> None:
    sandbox = ShopifySandboxShop(SHOP, TOKEN)
    client = _client(sandbox)
    pixel_id = activate_pixel(client, "https://okaeri.example/events/shopify/key-1")
    # a reinstall (Shopify answers TAKEN to a second create): the existing pixel gets the new URL
    assert activate_pixel(client, "https://okaeri.example/events/shopify/key-2") == pixel_id
    assert sandbox.web_pixel is not None and "key-2" in sandbox.web_pixel["settings"]
    assert activate_pixel(client, "https://okaeri.example/events/shopify/key-3", pixel_id) == pixel_id
    assert "key-3" in sandbox.web_pixel["settings"]


def test_settings_the_extension_does_not_declare_are_refused() -> None:
    sandbox = ShopifySandboxShop(SHOP, TOKEN)
    client = _client(sandbox)
    answer = client.query(CREATE, {"webPixel": {"settings": '{"accountID": "1"}'}})
    assert answer["webPixelCreate"]["userErrors"][0]["code"] == "INVALID_SETTINGS"
    with pytest.raises(BadResponse, match="NOT_FOUND"):
        activate_pixel(client, "https://okaeri.example/events/shopify/key-1", "gid://shopify/WebPixel/404")


def test_a_plain_http_event_url_is_never_given_to_a_pixel() -> None:
    with pytest.raises(ValueError):
        activate_pixel(_client(ShopifySandboxShop(SHOP, TOKEN)), "http://okaeri.example/events/shopify/key-1")

"""Basket and view beacons from the storefront script: what a stranger's bytes may and may not do.

A beacon names a visitor (a random first-party id), the customer the page claims and product ids.
The page's claim binds a customer to the first visitor only; a click on the customer's own mail
link proves it. Links, names and prices in a message always come from the shop's synced data.
"""
from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from plugin.delivery.batch import deliver
from plugin.engine.tick import run_shop_tick
from plugin.measurement.links import VISITOR_PROOF_PARAM, click_url, visitor_proof
from plugin.storage.models import BrowseEvent, Cart, CartLine, Message, MessageEvent, Proof, VisitorBinding
from plugin.web.app import create_app
from tests.factories import enable, make_cart, make_customer, make_product, make_shop

HOME = "https://test.shop-pro.jp"  # the factories' shop URL
REAL = "browser-of-the-customer-01"
STRANGER = "browser-of-a-stranger-0001"


def _setup(runtime, session, clock):  # type: ignore[no-untyped-def]
    shop = make_shop(session, clock.now())
    customer = make_customer(session, shop, clock.now())
    product = make_product(session, shop, clock.now(), price=1200)
    return TestClient(create_app(runtime)), shop, customer, product


def _post(client: TestClient, shop, visitor: str, **fields: Any):  # type: ignore[no-untyped-def]
    body = {"type": "basket", "visitor": visitor, **fields}
    return client.post(f"/events/colorme/{shop.event_key}", json=body)


def _basket(client: TestClient, shop, visitor: str, customer_id: str, *products, **fields: Any):  # type: ignore[no-untyped-def]
    items = [{"id": p.external_id, "quantity": 1, **fields.pop("item", {})} for p in products]
    return _post(client, shop, visitor, customer_id=customer_id, items=items, **fields)


def _lines(session) -> list[tuple[int, int]]:  # type: ignore[no-untyped-def]
    session.expire_all()
    return [tuple(r) for r in session.execute(select(CartLine.product_id, CartLine.quantity).order_by(CartLine.id)).all()]


def _send_reminders(runtime, session, shop, clock, catcher):  # type: ignore[no-untyped-def]
    """Two hours on: the tick writes the reminders and delivery sends them; returns the mails."""
    enable(session, shop, "cart_recovery", clock.now())
    clock.advance(hours=2)
    for message_id, _ in run_shop_tick(runtime, shop.id):
        deliver(runtime, message_id)
    return catcher.snapshot()


def _click_targets(mail) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Every tracked link of a mail's HTML: its path on Okaeri → the shop URL it leads to."""
    html = mail.get_body(("html",)).get_content()
    paths = re.findall(r'href="http://okaeri.test(/t/c/[^"]+)"', html)
    return {p.replace("&amp;", "&"): unquote(parse_qs(urlsplit(p.replace("&amp;", "&")).query)["u"][0]) for p in paths}


# What a logged-in visitor's beacons do ---------------------------------------------------------

def test_a_logged_in_visitors_basket_becomes_the_customers_cart_at_synced_prices(runtime, session, clock) -> None:  # type: ignore[no-untyped-def]
    client, shop, customer, product = _setup(runtime, session, clock)
    answer = _basket(client, shop, REAL, customer.external_id, product, item={"quantity": 2, "price": 1})
    assert answer.status_code == 202 and answer.headers["access-control-allow-origin"] == "*"
    cart = session.execute(select(Cart)).scalar_one()
    assert cart.customer_id == customer.id and cart.total == 2400 and cart.recovery_url == f"{HOME}/cart/"
    assert session.execute(select(CartLine.product_id, CartLine.quantity, CartLine.unit_price)).all() == [(product.id, 2, 1200)]


def test_same_basket_seen_again_is_not_new_activity(runtime, session, clock) -> None:  # type: ignore[no-untyped-def]
    client, shop, customer, product = _setup(runtime, session, clock)
    _basket(client, shop, REAL, customer.external_id, product)
    first = session.execute(select(Cart.updated_at, Cart.revision)).one()
    clock.advance(hours=1)
    _basket(client, shop, REAL, customer.external_id, product)
    session.expire_all()
    assert session.execute(select(Cart.updated_at, Cart.revision)).one() == first


def test_product_view_is_recorded(runtime, session, clock) -> None:  # type: ignore[no-untyped-def]
    client, shop, customer, product = _setup(runtime, session, clock)
    answer = _post(client, shop, REAL, type="product_view", customer_id=customer.external_id, product_id=product.external_id)
    assert answer.status_code == 202
    assert session.execute(select(BrowseEvent.product_id, BrowseEvent.customer_id)).one() == (product.id, customer.id)


def test_a_visitor_may_empty_the_basket_it_filled(runtime, session, clock) -> None:  # type: ignore[no-untyped-def]
    client, shop, customer, product = _setup(runtime, session, clock)
    _basket(client, shop, REAL, customer.external_id, product)
    _basket(client, shop, REAL, customer.external_id)
    assert _lines(session) == []


def test_a_basket_of_products_not_synced_yet_does_not_empty_the_cart(runtime, session, clock) -> None:  # type: ignore[no-untyped-def]
    client, shop, customer, product = _setup(runtime, session, clock)
    _basket(client, shop, REAL, customer.external_id, product)
    _post(client, shop, REAL, customer_id=customer.external_id, items=[{"id": "987654321", "quantity": 1}])
    assert _lines(session) == [(product.id, 1)]


def test_bad_events_get_a_clear_4xx_and_store_nothing(runtime, session, clock) -> None:  # type: ignore[no-untyped-def]
    client, shop, customer, product = _setup(runtime, session, clock)
    url = f"/events/colorme/{shop.event_key}"
    assert client.post(url, content=b"{not json").status_code == 422
    assert client.post(url, json={"type": "teleport", "visitor": REAL}).status_code == 422
    no_visitor = client.post(url, json={"type": "basket", "customer_id": customer.external_id, "items": []})
    assert no_visitor.status_code == 422 and "visitor" in no_visitor.json()["error"]
    assert _post(client, shop, "short", customer_id=customer.external_id).status_code == 422
    assert _post(client, shop, REAL, customer_id="1 OR 1=1").status_code == 422
    wrong_key = client.post("/events/colorme/wrong-key", json={"type": "basket", "visitor": REAL})
    assert wrong_key.status_code == 404
    assert session.execute(select(Cart)).first() is None


# The answer says nothing ------------------------------------------------------------------------

def test_known_and_unknown_customers_and_products_get_the_same_answer(runtime, session, clock) -> None:  # type: ignore[no-untyped-def]
    client, shop, customer, product = _setup(runtime, session, clock)
    answers = [
        _basket(client, shop, REAL, customer.external_id, product),  # recorded
        _basket(client, shop, "browser-of-nobody-000001", "999999", product),  # no such customer
        _basket(client, shop, STRANGER, customer.external_id, product),  # someone else's customer
        _post(client, shop, REAL, type="product_view", customer_id=customer.external_id, product_id=product.external_id),
        _post(client, shop, REAL, type="product_view", customer_id=customer.external_id, product_id="999999"),
        _post(client, shop, "browser-of-nobody-000002", type="product_view", product_id=product.external_id),
    ]
    assert {(a.status_code, a.content, a.headers["content-type"]) for a in answers} == {
        (202, b'{"ok":true}', "application/json")}


def test_a_stranger_walking_through_sequential_ids_binds_few_customers(runtime, session, clock, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import plugin.sync.visitors as visitors

    monkeypatch.setattr(visitors, "MIN_PAGE_BINDINGS", 3)  # the hourly budget of a small shop
    client, shop, first, product = _setup(runtime, session, clock)
    people = [first, *(make_customer(session, shop, clock.now()) for _ in range(5))]
    # Given a stranger claiming every id in turn, from one browser and then from a new browser per id
    for person in people:
        _basket(client, shop, STRANGER, person.external_id, product)
    assert session.execute(select(func.count()).select_from(VisitorBinding)).scalar() == 1  # one customer per browser
    for n, person in enumerate(people):
        _basket(client, shop, f"fresh-browser-{n:012d}", person.external_id, product)
    # Then only the shop's hourly budget of customers was bound, and an hour later a real visitor binds again
    assert session.execute(select(func.count()).select_from(VisitorBinding)).scalar() == 3
    clock.advance(hours=1, minutes=1)
    _basket(client, shop, REAL, people[-1].external_id, product)
    assert session.execute(select(VisitorBinding.customer_id).where(VisitorBinding.visitor_id == REAL)).scalar() == people[-1].id


# A claim from another browser changes nothing ---------------------------------------------------

def test_an_unproven_empty_basket_leaves_a_real_cart_intact(runtime, session, clock) -> None:  # type: ignore[no-untyped-def]
    client, shop, customer, product = _setup(runtime, session, clock)
    _basket(client, shop, REAL, customer.external_id, product)
    before = session.execute(select(Cart.revision, Cart.updated_at)).one()
    clock.advance(minutes=10)
    assert _basket(client, shop, STRANGER, customer.external_id).status_code == 202
    assert _lines(session) == [(product.id, 1)]
    assert session.execute(select(Cart.revision, Cart.updated_at)).one() == before


def test_an_empty_basket_never_empties_a_cart_nobody_proved(runtime, session, clock) -> None:  # type: ignore[no-untyped-def]
    # A cart kept from before visitors were bound (or written by the platform's own data)
    client, shop, customer, product = _setup(runtime, session, clock)
    make_cart(session, shop, customer, [product], clock.now())
    _basket(client, shop, STRANGER, customer.external_id)
    assert _lines(session) == [(product.id, 1)]


def test_a_claim_from_a_second_visitor_changes_nothing(runtime, session, clock) -> None:  # type: ignore[no-untyped-def]
    client, shop, customer, product = _setup(runtime, session, clock)
    other = make_product(session, shop, clock.now())
    _basket(client, shop, REAL, customer.external_id, product)
    _basket(client, shop, STRANGER, customer.external_id, other)
    _post(client, shop, STRANGER, type="product_view", customer_id=customer.external_id, product_id=other.external_id)
    assert _lines(session) == [(product.id, 1)]
    assert session.execute(select(BrowseEvent)).first() is None
    assert session.execute(select(VisitorBinding.visitor_id)).scalars().all() == [REAL]


def test_one_browser_speaks_for_one_customer(runtime, session, clock) -> None:  # type: ignore[no-untyped-def]
    client, shop, customer, product = _setup(runtime, session, clock)
    neighbour = make_customer(session, shop, clock.now())
    _basket(client, shop, STRANGER, customer.external_id, product)
    _basket(client, shop, STRANGER, neighbour.external_id, product)
    assert session.execute(select(Cart.customer_id)).scalars().all() == [customer.id]


def test_a_browser_the_page_vouched_for_speaks_only_while_the_customer_is_logged_in(runtime, session, clock) -> None:  # type: ignore[no-untyped-def]
    client, shop, customer, product = _setup(runtime, session, clock)
    _basket(client, shop, REAL, customer.external_id, product)
    _post(client, shop, REAL, items=[])  # logged out on a shared computer: not the customer's basket
    _post(client, shop, REAL, type="product_view", product_id=product.external_id)
    assert _lines(session) == [(product.id, 1)] and session.execute(select(BrowseEvent)).first() is None


def test_the_platforms_own_cart_is_never_changed_by_events(runtime, session, clock) -> None:  # type: ignore[no-untyped-def]
    client, shop, customer, product = _setup(runtime, session, clock)
    cart = make_cart(session, shop, customer, [product], clock.now())
    cart.source = "platform"
    session.add(cart)
    session.commit()
    proof = visitor_proof(runtime, shop.id, customer.id, clock.now())
    _basket(client, shop, REAL, customer.external_id, proof=proof)
    assert _lines(session) == [(product.id, 1)]


# Okaeri's own signed link proves who a visitor is -----------------------------------------------

def test_a_signed_click_proof_rebinds_the_customer_to_the_browser_that_clicked(runtime, session, clock, catcher) -> None:  # type: ignore[no-untyped-def]
    client, shop, customer, product = _setup(runtime, session, clock)
    wanted = make_product(session, shop, clock.now(), price=3000)
    # Given a stranger whose browser claimed the customer first and filled a basket
    _basket(client, shop, STRANGER, customer.external_id, product)
    # When the customer's reminder arrives and they click it
    mail = _send_reminders(runtime, session, shop, clock, catcher)[0]
    link = next(path for path, target in _click_targets(mail).items() if target == f"{HOME}/cart/")
    landing = client.get(link, follow_redirects=False).headers["location"]
    assert landing.startswith(f"{HOME}/cart/?{VISITOR_PROOF_PARAM}=")
    proof = parse_qs(urlsplit(landing).query)[VISITOR_PROOF_PARAM][0]
    # and their own browser's script sends the proof with its basket
    _basket(client, shop, REAL, customer.external_id, wanted, proof=proof)
    # Then their browser speaks for them, the stranger's no longer does
    assert _lines(session) == [(wanted.id, 1)]
    assert session.execute(select(VisitorBinding.visitor_id, VisitorBinding.proof)).all() == [(REAL, Proof.link)]
    _basket(client, shop, STRANGER, customer.external_id)
    assert _lines(session) == [(wanted.id, 1)]


def test_a_link_leaving_the_shop_carries_no_proof(runtime, session, clock, catcher) -> None:  # type: ignore[no-untyped-def]
    client, shop, customer, product = _setup(runtime, session, clock)
    make_cart(session, shop, customer, [product], clock.now())
    _send_reminders(runtime, session, shop, clock, catcher)
    message_id = session.execute(select(Message.id)).scalar_one()
    elsewhere = click_url(runtime, message_id, "https://maps.example/shop")
    answer = client.get(elsewhere.removeprefix("http://okaeri.test"), follow_redirects=False)
    assert answer.status_code == 302 and answer.headers["location"] == "https://maps.example/shop"


@pytest.mark.parametrize("forge", ["tampered", "expired", "other shop"])
def test_a_forged_expired_or_foreign_proof_proves_nothing(runtime, session, clock, forge) -> None:  # type: ignore[no-untyped-def]
    client, shop, customer, product = _setup(runtime, session, clock)
    _basket(client, shop, REAL, customer.external_id, product)
    proof = visitor_proof(runtime, shop.id, customer.id, clock.now())
    if forge == "tampered":
        proof = proof[:-2] + ("AA" if not proof.endswith("AA") else "BB")
    elif forge == "expired":
        clock.advance(hours=1, minutes=1)
    else:
        proof = visitor_proof(runtime, make_shop(session, clock.now()).id, customer.id, clock.now())
    _basket(client, shop, STRANGER, customer.external_id, proof=proof)
    assert _lines(session) == [(product.id, 1)]
    assert session.execute(select(VisitorBinding.visitor_id, VisitorBinding.proof)).all() == [(REAL, Proof.page)]


def test_a_proven_browser_showing_someone_else_logged_in_changes_no_cart(runtime, session, clock) -> None:  # type: ignore[no-untyped-def]
    # A forwarded mail: the proof names the customer, the page another one logged in on that browser
    client, shop, customer, product = _setup(runtime, session, clock)
    neighbour = make_customer(session, shop, clock.now())
    _basket(client, shop, REAL, neighbour.external_id, product)
    proof = visitor_proof(runtime, shop.id, customer.id, clock.now())
    _basket(client, shop, STRANGER, neighbour.external_id, proof=proof)
    assert session.execute(select(Cart.customer_id)).scalars().all() == [neighbour.id] and _lines(session) == [(product.id, 1)]


# From the event to the rendered reminder ---------------------------------------------------------

def test_an_outsiders_cart_url_and_prices_never_reach_the_reminder(runtime, session, clock, catcher) -> None:  # type: ignore[no-untyped-def]
    client, shop, customer, product = _setup(runtime, session, clock)
    # Given an outsider, first to claim the customer, posting their own link, name and price
    _basket(client, shop, STRANGER, customer.external_id, product, cart_url="https://evil.example/phish",
            item={"price": 1, "name": "無料プレゼント", "quantity": 1})
    # When the reminder is rendered and sent
    mail = _send_reminders(runtime, session, shop, clock, catcher)[0]
    # Then every link leads to the shop, the cart button to its own cart, with the synced name and price
    targets = _click_targets(mail)
    assert f"{HOME}/cart/" in targets.values() and all(t.startswith(f"{HOME}/") for t in targets.values())
    text, html = mail.get_body(("plain",)).get_content(), mail.get_body(("html",)).get_content()
    for body in (text, html):
        assert "evil.example" not in body and "無料プレゼント" not in body
        assert product.name in body and "1,200" in body
    assert session.execute(select(MessageEvent)).first() is None


def test_a_stored_cart_link_off_the_shop_is_replaced_by_the_shops_own(runtime, session, clock, catcher) -> None:  # type: ignore[no-untyped-def]
    # A cart written before links were built from the shop's URL
    _, shop, customer, product = _setup(runtime, session, clock)
    cart = make_cart(session, shop, customer, [product], clock.now())
    cart.recovery_url = "https://evil.example/cart/"
    session.add(cart)
    session.commit()
    mail = _send_reminders(runtime, session, shop, clock, catcher)[0]
    assert all(t.startswith(f"{HOME}") for t in _click_targets(mail).values())
    assert HOME in _click_targets(mail).values()


# The script itself (run under Node when it is installed) ----------------------------------------

_HARNESS = """
const fs = require("fs");
const store = {}, sent = [], replaced = [];
const page = JSON.parse(process.argv[2]);
global.window = {
  Colorme: page.colorme,
  localStorage: { getItem: k => (k in store ? store[k] : null), setItem: (k, v) => { store[k] = String(v); } },
  crypto: require("crypto").webcrypto,
  history: { state: null, replaceState: (s, t, u) => replaced.push(u) },
};
global.history = window.history;
global.location = { href: page.href };
global.document = { currentScript: { src: "https://okaeri.test/storefront/colorme.js?key=k1" } };
global.navigator = { sendBeacon: (url, body) => { sent.push({ url, body: JSON.parse(body) }); return true; } };
global.btoa = s => Buffer.from(s, "binary").toString("base64");
for (let load = 0; load < page.loads; load++) eval(fs.readFileSync(process.argv[3], "utf8"));
console.log(JSON.stringify({ sent, replaced }));
"""


def _run_script(tmp_path, colorme: dict[str, Any], href: str, loads: int = 1) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    import json
    import shutil
    import subprocess
    from importlib import resources

    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed")
    harness = tmp_path / "harness.js"
    harness.write_text(_HARNESS)
    script = resources.files("connectors.colorme").joinpath("storefront.js")
    page = json.dumps({"colorme": colorme, "href": href, "loads": loads})
    done = subprocess.run([node, str(harness), page, str(script)], capture_output=True, text=True, timeout=30, check=True)
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def test_the_script_sends_a_lasting_visitor_id_and_ids_only(tmp_path) -> None:  # type: ignore[no-untyped-def]
    colorme = {"page": "product", "customer": {"id": 42}, "product": {"id": 7},
               "basket": {"total_price": 1100, "items": [{"id": 7, "name": "りんご", "price": 1100, "quantity": 1}]}}
    beacons = _run_script(tmp_path, colorme, "https://test.shop-pro.jp/?pid=7", loads=2)["sent"]
    assert [b["url"] for b in beacons] == ["https://okaeri.test/events/colorme/k1"] * 4
    assert len({b["body"]["visitor"] for b in beacons}) == 1  # kept across page loads
    assert re.fullmatch(r"[A-Za-z0-9_-]{22,64}", beacons[0]["body"]["visitor"])
    assert beacons[1]["body"]["items"] == [{"id": "7", "quantity": 1}]  # no name, no price, no URL
    assert {b["body"]["customer_id"] for b in beacons} == {"42"} and "proof" not in beacons[0]["body"]


def test_the_script_keeps_the_mail_links_proof_and_takes_it_out_of_the_address_bar(tmp_path) -> None:  # type: ignore[no-untyped-def]
    ran = _run_script(tmp_path, {"page": "top", "customer": {"id": None}, "basket": {"items": []}},
                      f"https://test.shop-pro.jp/?mode=cate&{VISITOR_PROOF_PARAM}=v1.1.2.3.abc")
    assert [b["body"]["proof"] for b in ran["sent"]] == ["v1.1.2.3.abc"]
    assert "customer_id" not in ran["sent"][0]["body"]  # nobody logged in: the proof alone speaks
    assert ran["replaced"] == ["https://test.shop-pro.jp/?mode=cate"]

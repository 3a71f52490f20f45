"""Events stored in batches (the endpoint's group commit) change exactly what the same events
stored one by one change: same outcomes, same views, bindings and carts — whatever the mix of
proofs, page claims, baskets and views, and wherever the batch boundaries fall."""
from __future__ import annotations

import random

import pytest
from sqlalchemy import select

from connectors.storefront import BasketItem, StorefrontEvent
from plugin.measurement.links import visitor_proof
from plugin.storage.models import BrowseEvent, Cart, CartLine, Customer, Product, Shop, VisitorBinding
from plugin.sync.storefront_events import record_event, record_events
from tests.factories import make_customer, make_product, make_shop

VISITORS = [f"visitor-{i:02d}-abcdefghijklmnopqrstu" for i in range(6)]


def _shop_with_people(session, now):  # type: ignore[no-untyped-def]
    shop = make_shop(session, now)
    people = [make_customer(session, shop, now, external_id=str(500 + i)) for i in range(4)]
    goods = [make_product(session, shop, now, external_id=str(9000 + i)) for i in range(4)]
    return shop, people, goods


def _script(seed: int, people: list[Customer]) -> list[tuple[str, str, int | None, str | None, tuple[str, ...]]]:
    """(kind, claimed customer, proof's customer index, product, basket) per event, by seed."""
    rng = random.Random(seed)
    events = []
    for _ in range(40):
        kind = rng.choice(["product_view"] * 6 + ["basket"] * 2)
        claimed = rng.choice(["", "", *(p.external_id for p in people), "777"])
        proof = rng.randrange(len(people)) if rng.random() < 0.15 else None
        product = rng.choice(["9000", "9001", "9002", "9003", "12345"])
        basket = tuple(rng.sample(["9000", "9001", "9002", "12345"], rng.randrange(0, 3)))
        events.append((kind, claimed, proof, product, basket))
    return events


def _events(runtime, shop: Shop, people: list[Customer], script, now) -> list[tuple[StorefrontEvent, int | None]]:  # type: ignore[no-untyped-def]
    rng = random.Random(len(script))
    out = []
    for kind, claimed, proof, product, basket in script:
        visitor = rng.choice(VISITORS)
        proven = people[proof].id if proof is not None else None
        token = visitor_proof(runtime, shop.id, people[proof].id, now) if proof is not None else ""
        event = StorefrontEvent(kind=kind, visitor_id=visitor, customer_id=claimed, proof=token,
                                product_id=product if kind == "product_view" else None,
                                items=tuple(BasketItem(product_id=p, quantity=1) for p in basket))
        out.append((event, proven))
    return out


def _state(session, shop: Shop) -> dict[str, object]:  # type: ignore[no-untyped-def]
    customer = {c.id: c.external_id for c in session.execute(select(Customer).where(Customer.shop_id == shop.id)).scalars()}
    product = {p.id: p.external_id for p in session.execute(select(Product).where(Product.shop_id == shop.id)).scalars()}
    views = sorted((customer[v.customer_id], product[v.product_id]) for v in session.execute(
        select(BrowseEvent).where(BrowseEvent.shop_id == shop.id)).scalars())
    bindings = sorted((b.visitor_id, customer[b.customer_id], b.proof) for b in session.execute(
        select(VisitorBinding).where(VisitorBinding.shop_id == shop.id)).scalars())
    carts = sorted((c.external_key, c.visitor_id, tuple(sorted((line.product_external_id, line.quantity) for line in
                    session.execute(select(CartLine).where(CartLine.cart_id == c.id)).scalars())))
                   for c in session.execute(select(Cart).where(Cart.shop_id == shop.id)).scalars())
    return {"views": views, "bindings": bindings, "carts": carts}


@pytest.mark.parametrize("seed", range(12))
def test_a_batch_stores_what_one_by_one_stores(runtime, session, clock, seed) -> None:  # type: ignore[no-untyped-def]
    now = clock.now()
    one_shop, one_people, _ = _shop_with_people(session, now)
    batch_shop, batch_people, _ = _shop_with_people(session, now)
    script = _script(seed, one_people)

    singly = [record_event(session, one_shop, event, now, cart_url="https://test.shop-pro.jp/cart/",
                           proven_customer_id=proven)
              for event, proven in _events(runtime, one_shop, one_people, script, now)]
    session.commit()
    batched: list[str] = []
    events = _events(runtime, batch_shop, batch_people, script, now)
    cuts = sorted(random.Random(seed).sample(range(1, len(events)), 3))
    for start, end in zip([0, *cuts], [*cuts, len(events)], strict=True):
        batched += record_events(session, batch_shop, events[start:end], now, cart_url="https://test.shop-pro.jp/cart/")
    session.commit()

    assert batched == singly
    assert _state(session, batch_shop) == _state(session, one_shop)
    assert any(outcome == "view recorded" for outcome in singly)  # the script exercises the fast path

"""The event endpoint's group commit: a burst of beacons is stored in a few transactions, each
answered only after its commit; an event that cannot be stored fails alone."""
from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import func, select

from connectors.storefront import StorefrontEvent
from plugin.measurement.links import visitor_proof
from plugin.storage.models import BrowseEvent
from plugin.web.event_intake import UNKNOWN_SHOP, EventIntake, Received
from tests.factories import make_customer, make_product, make_shop


def _bound_visitors(runtime, session, clock, count: int):  # type: ignore[no-untyped-def]
    shop = make_shop(session, clock.now())
    product = make_product(session, shop, clock.now())
    people = [make_customer(session, shop, clock.now()) for _ in range(count)]
    visitors = [f"visitor-{i:03d}-abcdefghijklmnopqrstu" for i in range(count)]
    proofs = [StorefrontEvent(kind="product_view", visitor_id=v, customer_id=p.external_id, product_id=product.external_id,
                              proof=visitor_proof(runtime, shop.id, p.id, clock.now())) for v, p in zip(visitors, people, strict=True)]
    return shop, product, people, visitors, proofs


def _commits(engine) -> list[int]:  # type: ignore[no-untyped-def]
    seen: list[int] = []
    sa_event.listen(engine, "commit", lambda _connection: seen.append(1))
    return seen


def test_a_burst_is_stored_in_a_few_transactions_and_every_event_is_answered(runtime, session, clock, engine) -> None:  # type: ignore[no-untyped-def]
    shop, product, people, visitors, proofs = _bound_visitors(runtime, session, clock, 40)
    intake = EventIntake(runtime)
    views = [Received("colorme", shop.event_key, StorefrontEvent(kind="product_view", visitor_id=v, customer_id=p.external_id,
                                                                  product_id=product.external_id))
             for v, p in zip(visitors, people, strict=True)] * 5

    async def burst() -> list[str]:
        await asyncio.gather(*(intake.submit(Received("colorme", shop.event_key, e)) for e in proofs))
        commits = _commits(engine)
        outcomes = await asyncio.gather(*(intake.submit(r) for r in views))
        assert 1 <= len(commits) < len(views) // 10  # 200 events, a handful of commits
        return list(outcomes)

    try:
        outcomes = asyncio.run(burst())
    finally:
        intake.close()
    assert outcomes == ["view recorded"] * 200
    rows = session.execute(select(func.count()).select_from(BrowseEvent)).scalar_one()
    assert rows == 240  # the 40 proofs' own views and the 200


def test_an_unknown_or_uninstalled_key_is_told_apart_from_a_stored_event(runtime, session, clock) -> None:  # type: ignore[no-untyped-def]
    shop, product, people, visitors, proofs = _bound_visitors(runtime, session, clock, 1)
    gone = make_shop(session, clock.now(), state="uninstalled")
    intake = EventIntake(runtime)

    async def post() -> list[str]:
        return list(await asyncio.gather(
            intake.submit(Received("colorme", shop.event_key, proofs[0])),
            intake.submit(Received("colorme", "no-such-key", proofs[0])),
            intake.submit(Received("colorme", gone.event_key, proofs[0])),
            intake.submit(Received("shopify", shop.event_key, proofs[0]))))  # another platform's key space

    try:
        assert asyncio.run(post()) == ["view recorded", UNKNOWN_SHOP, UNKNOWN_SHOP, UNKNOWN_SHOP]
    finally:
        intake.close()


def test_an_event_that_cannot_be_stored_fails_alone(runtime, session, clock, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import plugin.web.event_intake as intake_module

    shop, product, people, visitors, proofs = _bound_visitors(runtime, session, clock, 6)
    real = intake_module.record_events

    def flaky(session, shop, events, now, *, cart_url):  # type: ignore[no-untyped-def]
        if any(event.visitor_id == visitors[3] for event, _ in events):
            raise RuntimeError("poison")
        return real(session, shop, events, now, cart_url=cart_url)

    monkeypatch.setattr(intake_module, "record_events", flaky)
    intake = EventIntake(runtime)

    async def post() -> list[object]:
        return list(await asyncio.gather(*(intake.submit(Received("colorme", shop.event_key, e)) for e in proofs),
                                         return_exceptions=True))

    try:
        outcomes = asyncio.run(post())
    finally:
        intake.close()
    assert [isinstance(o, RuntimeError) for o in outcomes] == [False, False, False, True, False, False]
    assert session.execute(select(func.count()).select_from(BrowseEvent)).scalar_one() == 5


@pytest.mark.slow
def test_concurrent_beacons_through_the_server_are_all_stored(runtime, session, clock) -> None:  # type: ignore[no-untyped-def]
    import json
    import threading

    import httpx

    from plugin.demo.mailcatcher import free_port
    from plugin.web.app import create_app
    from tests.live import serve

    shop, product, people, visitors, proofs = _bound_visitors(runtime, session, clock, 20)
    port = free_port()
    bodies = [json.dumps({"type": "product_view", "visitor": e.visitor_id, "customer_id": e.customer_id,
                          "proof": e.proof, "product_id": e.product_id}).encode() for e in proofs] * 3
    answers: list[int] = []
    with serve(create_app(runtime), port):
        def post(chunk: list[bytes]) -> None:
            with httpx.Client(timeout=30) as client:
                for body in chunk:
                    answers.append(client.post(f"http://127.0.0.1:{port}/events/colorme/{shop.event_key}",
                                               content=body, headers={"Content-Type": "text/plain"}).status_code)
        threads = [threading.Thread(target=post, args=(bodies[i::6],)) for i in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert answers == [202] * 60
    assert session.execute(select(func.count()).select_from(BrowseEvent)).scalar_one() == 60

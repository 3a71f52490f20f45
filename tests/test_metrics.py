"""/metrics lets an operator watch the service: the outbox backlog, ticks, intake and refusals,
rate-limit waits, the actors — never a customer's data, never an unbounded label."""
from __future__ import annotations

import re

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlmodel import select

from connectors.ratelimit import MemoryBudget
from plugin.jobs.actors import DELIVER_MESSAGES, SCENARIO_TICK
from plugin.jobs.worker import start_worker
from plugin.web.app import create_app
from tests.factories import idle_cart_shop


def _families(text: str) -> dict[str, list]:  # type: ignore[type-arg]
    return {family.name: family.samples for family in text_string_to_metric_families(text)}


def _value(samples, **labels) -> float:  # type: ignore[no-untyped-def]
    return sum(s.value for s in samples if all(s.labels.get(k) == v for k, v in labels.items()))


def test_after_a_tick_and_delivery_every_family_is_exposed(runtime, session, clock, catcher) -> None:  # type: ignore[no-untyped-def]
    shop, people, _ = idle_cart_shop(session, clock.now(), customers=3)
    app = TestClient(create_app(runtime))
    before = _families(app.get("/metrics").text)
    worker = start_worker(runtime, threads=2)
    try:
        runtime.tasks.scenario_tick(shop.id)
        runtime.broker.join(SCENARIO_TICK.queue_name, timeout=20_000)
        runtime.broker.join(DELIVER_MESSAGES.queue_name, timeout=20_000)
        worker.join()
    finally:
        worker.stop()
    app.post(f"/events/colorme/{shop.event_key}", content=b"not json")  # one refused event

    answer = app.get("/metrics")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    after = _families(answer.text)
    assert _value(after["okaeri_tick_duration_seconds"], shop_size="<1k") - _value(
        before.get("okaeri_tick_duration_seconds", []), shop_size="<1k") > 0
    assert _value(after["okaeri_intake"], kind="event", outcome="refused", reason="invalid") >= 1
    assert _value(after["okaeri_outbox_rows"], status="pending") == 0  # all three went out
    assert after["okaeri_outbox_oldest_due_seconds"][0].value == 0
    assert _value(after["dramatiq_messages"], actor_name=DELIVER_MESSAGES.actor_name) >= 1
    assert len(catcher.snapshot()) == 3
    sent = _value(after["okaeri_messages_sent"], channel="email", scenario="cart_recovery") - _value(
        before.get("okaeri_messages_sent", []), channel="email", scenario="cart_recovery")
    assert sent == 3  # once per message, not per attempt or per settle

    def timed(families: dict) -> float:  # type: ignore[type-arg]
        return _value([s for s in families.get("okaeri_delivery_latency_seconds", [])
                       if s.name.endswith("_count")], channel="email")
    assert timed(after) - timed(before) == 3
    for samples in after.values():  # labels are bounded: no shop id, no address, no customer
        for sample in samples:
            assert not set(sample.labels) & {"shop", "shop_id", "customer", "email", "address"}
            assert not any("@" in value for value in sample.labels.values())


def test_the_backlog_gauges_count_overdue_messages(runtime, session, clock) -> None:  # type: ignore[no-untyped-def]
    from plugin.engine.tick import run_shop_tick

    shop, _, _ = idle_cart_shop(session, clock.now(), customers=2)
    run_shop_tick(runtime, shop.id)
    clock.advance(minutes=5)
    families = _families(TestClient(create_app(runtime)).get("/metrics").text)
    assert _value(families["okaeri_outbox_rows"], status="pending") == 2
    assert families["okaeri_outbox_oldest_due_seconds"][0].value >= 300


def test_waiting_on_a_platform_budget_is_counted(runtime) -> None:  # type: ignore[no-untyped-def]
    now = [0.0]
    budget = MemoryBudget(1, 60.0, now=lambda: now[0], sleep=lambda seconds: now.__setitem__(0, now[0] + seconds))
    budget.platform = "colorme"
    budget.settle(budget.reserve())
    budget.settle(budget.reserve())  # the second call waits out the window
    families = _families(TestClient(create_app(runtime)).get("/metrics").text)
    assert _value(families["okaeri_rate_limit_waits"], platform="colorme") >= 1
    assert _value(families["okaeri_rate_limit_wait_seconds"], platform="colorme") > 0


def test_a_configured_token_guards_the_metrics(runtime) -> None:  # type: ignore[no-untyped-def]
    runtime.settings = runtime.settings.model_copy(update={"metrics_token": "scrape-token-1234"})
    app = TestClient(create_app(runtime))
    assert app.get("/metrics").status_code == 401
    assert app.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    answer = app.get("/metrics", headers={"Authorization": "Bearer scrape-token-1234"})
    assert answer.status_code == 200 and re.search(r"^okaeri_outbox_rows", answer.text, re.M)


def test_a_message_the_relay_refuses_for_good_counts_as_failed(runtime, session, clock, catcher) -> None:  # type: ignore[no-untyped-def]
    from plugin.delivery.batch import deliver_batch
    from plugin.engine.tick import run_shop_tick
    from plugin.metrics import MESSAGES_FAILED, MESSAGES_SENT
    from plugin.storage.models import Message

    shop, people, _ = idle_cart_shop(session, clock.now(), customers=2)
    run_shop_tick(runtime, shop.id)
    ids = [m.id for m in session.exec(select(Message).where(Message.shop_id == shop.id))]
    catcher.reject = {people[0].email: "550 5.1.1 no such user"}  # this recipient does not exist
    sent = MESSAGES_SENT.labels("email", "cart_recovery")._value.get()
    failed = MESSAGES_FAILED.labels("email", "cart_recovery")._value.get()
    deliver_batch(runtime, ids)
    assert MESSAGES_FAILED.labels("email", "cart_recovery")._value.get() - failed == 1
    assert MESSAGES_SENT.labels("email", "cart_recovery")._value.get() - sent == len(ids) - 1

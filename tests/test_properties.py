"""Invariants over random shops (hypothesis): whatever the shop looks like, no send to a
suppressed address, no duplicate idempotency key, the 24 h cap and quiet hours hold."""
from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select
from sqlmodel import SQLModel

from plugin.clock import as_utc
from plugin.delivery.batch import deliver_batch
from plugin.engine.tick import run_shop_tick
from plugin.gates.rules import DEFAULT as SHOP_RULES
from plugin.storage.models import Message, MessageStatus, Suppression, idempotency_key
from tests.factories import enable, make_cart, make_customer, make_order, make_product, make_shop, make_view

customers_strategy = st.lists(st.fixed_dictionaries({
    "consent": st.booleans(), "suppressed": st.booleans(), "points": st.sampled_from([0, 0, 300, 5000]),
    "expires_in_days": st.integers(1, 60), "cart_hours_ago": st.none() | st.integers(0, 200),
    "view_hours_ago": st.none() | st.integers(0, 30), "last_order_days_ago": st.none() | st.integers(0, 400),
}), min_size=1, max_size=12)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(people=customers_strategy, hour=st.integers(0, 23), ticks=st.integers(1, 6))
def test_invariants_hold_on_random_shops(runtime, engine, clock, catcher, people, hour, ticks) -> None:  # type: ignore[no-untyped-def]
    from sqlmodel import Session

    clock.at = datetime(2026, 11, 23, hour, 0, tzinfo=UTC)
    catcher.messages.clear()
    with engine.begin() as connection:  # each example starts from an empty shop
        for table in reversed(SQLModel.metadata.sorted_tables):
            connection.execute(delete(table))
    with Session(engine, expire_on_commit=False) as session:
        shop = _random_shop(session, clock.now(), people)
        for _ in range(ticks):
            run_shop_tick(runtime, shop.id)
            deliver_batch(runtime, list(session.execute(select(Message.id)).scalars()))  # whatever is due now
            clock.advance(hours=7)
        rows = session.execute(select(Message)).scalars().all()
        suppressed = set(session.execute(select(Suppression.address)).scalars())
    sent = [m for m in rows if m.status == MessageStatus.sent]
    assert not {m.to_address for m in sent} & suppressed
    assert not {m["To"].addresses[0].addr_spec for m in catcher.snapshot()} & suppressed
    assert len({idempotency_key(m) for m in rows}) == len(rows)
    by_customer = defaultdict(list)
    for m in sent:
        by_customer[m.customer_id].append(m.sent_at)
        sent_at = as_utc(m.sent_at)
        assert 8 <= sent_at.astimezone(ZoneInfo("Asia/Tokyo")).hour < 21, "sent in quiet hours"
    for times in by_customer.values():
        times.sort()
        assert all(b - a >= SHOP_RULES.cap_window for a, b in zip(times, times[1:], strict=False)), "two messages within 24 h"


def _random_shop(session, now, people):  # type: ignore[no-untyped-def]
    shop = make_shop(session, now)
    item = make_product(session, shop, now)
    for key in ("cart_recovery", "browse_retargeting", "point_expiry", "point_statement", "winback", "recommendation"):
        enable(session, shop, key, now, holdout_percent=10)
    for p in people:
        c = make_customer(session, shop, now, email_consent=p["consent"], points_balance=p["points"],
                          points_expire_at=now + timedelta(days=p["expires_in_days"]))
        if p["suppressed"]:
            session.add(Suppression(shop_id=shop.id, channel="email", address=c.email, reason="unsubscribed", created_at=now))
        if p["cart_hours_ago"] is not None:
            make_cart(session, shop, c, [item], now - timedelta(hours=p["cart_hours_ago"]))
        if p["view_hours_ago"] is not None:
            make_view(session, shop, c, item, now - timedelta(hours=p["view_hours_ago"]))
        if p["last_order_days_ago"] is not None:
            at = now - timedelta(days=p["last_order_days_ago"])
            make_order(session, shop, c, at, [item])
            c.last_order_at = at
            session.add(c)
    session.commit()
    return shop


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(people=customers_strategy, hour=st.integers(0, 23), partitions=st.integers(2, 4))
def test_a_tick_split_by_customer_decides_exactly_as_one_pass(runtime, engine, clock, people, hour, partitions) -> None:  # type: ignore[no-untyped-def]
    """Large shops tick in parallel shares of their customers; no gate may notice the split."""
    from sqlmodel import Session

    from plugin.storage.models import ScenarioRun

    start = datetime(2026, 11, 23, hour, 0, tzinfo=UTC)
    clock.at = start
    with engine.begin() as connection:
        for table in reversed(SQLModel.metadata.sorted_tables):
            connection.execute(delete(table))
    with Session(engine, expire_on_commit=False) as session:
        shop = _random_shop(session, clock.now(), people)
        enable(session, shop, "ranking", clock.now(), holdout_percent=10)

    def outcome(parts: int) -> tuple[list[tuple[object, ...]], list[int]]:
        clock.at = start
        handed = []
        for _ in range(3):
            handed += [message_id for message_id, _ in run_shop_tick(runtime, shop.id, partitions=parts)]
            clock.advance(hours=9)
        with engine.begin() as connection:
            rows = connection.execute(select(
                Message.customer_id, Message.scenario_key, Message.trigger_key, Message.status, Message.scheduled_at,
                Message.enqueued_at, Message.decision).order_by(Message.customer_id, Message.scenario_key,
                                                                Message.trigger_key)).all()
            handed_keys = [tuple(r) for r in connection.execute(select(Message.shop_id, Message.customer_id, Message.scenario_key,
                                                                       Message.trigger_key).where(Message.id.in_(handed)))]
            connection.execute(delete(Message))
            connection.execute(delete(ScenarioRun))
        return [tuple(r) for r in rows], sorted(handed_keys)

    assert outcome(partitions) == outcome(1)


def test_a_small_shop_is_not_split_and_a_large_one_is_split_evenly(session, clock) -> None:  # type: ignore[no-untyped-def]
    from plugin.engine.tick import customer_ranges
    from tests.factories import make_customer, make_shop

    shop = make_shop(session, clock.now())
    ids = [make_customer(session, shop, clock.now()).id for _ in range(9)]
    assert len(customer_ranges(session, shop.id, 2, min_share=5)) == 1  # 9 customers: not two shares of 5
    ranges = customer_ranges(session, shop.id, 3, min_share=3)
    shares = [[i for i in ids if (r.low is None or i >= r.low) and (r.high is None or i < r.high)] for r in ranges]
    assert [len(s) for s in shares] == [3, 3, 3] and sorted(sum(shares, [])) == sorted(ids)

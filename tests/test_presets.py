"""Each preset on a hand-built shop where the right audience is known exactly."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select

from plugin.delivery.batch import deliver_batch
from plugin.engine.tick import run_shop_tick
from plugin.storage.models import Message, ScenarioRun, Trigger
from tests.factories import enable, make_cart, make_customer, make_order, make_product, make_shop, make_view

MONDAY_NOON_JST = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)


def _audience(runtime, session, shop) -> set[tuple[int, str]]:  # type: ignore[no-untyped-def]
    """(customer, trigger key) of every message written; each key is the one its typed trigger columns give."""
    run_shop_tick(runtime, shop.id)
    session.expire_all()
    rows = session.execute(select(Message.customer_id, Message.trigger_key, Message.trigger_kind, Message.trigger_ref,
                                  Message.trigger_step).where(Message.shop_id == shop.id)).all()
    assert all(Trigger(kind, ref, step).key == key for _, key, kind, ref, step in rows)
    return {(customer, key) for customer, key, *_ in rows}


def _setup(session, clock, key: str):  # type: ignore[no-untyped-def]
    shop = make_shop(session, clock.now())
    enable(session, shop, key, clock.now())
    return shop, clock.now()


def _delivered(runtime, session, shop, catcher) -> list:  # type: ignore[no-untyped-def]
    ids = list(session.execute(select(Message.id).where(Message.shop_id == shop.id)).scalars())
    deliver_batch(runtime, ids)
    return catcher.snapshot()


def test_browse_retargeting_reaches_viewers_who_did_not_cart_or_buy(runtime, session, clock, catcher) -> None:  # type: ignore[no-untyped-def]
    shop, now = _setup(session, clock, "browse_retargeting")
    item = make_product(session, shop, now, name="藍色のマグ")
    looker, buyer, carter, fresh = (make_customer(session, shop, now) for _ in range(4))
    views = {who.id: make_view(session, shop, who, item, now - timedelta(hours=3)) for who in (looker, buyer, carter)}
    make_view(session, shop, fresh, item, now - timedelta(minutes=30))  # within the 2 h grace
    make_order(session, shop, buyer, now - timedelta(hours=2), [item])
    make_cart(session, shop, carter, [item], now - timedelta(hours=2, minutes=30))
    audience = _audience(runtime, session, shop)
    assert audience == {(looker.id, f"browse:{views[looker.id].id}")}
    mail, = _delivered(runtime, session, shop, catcher)
    assert "藍色のマグ" in mail.get_body(("plain",)).get_content()
    clock.advance(days=3)  # at most once per 7 days
    make_view(session, shop, looker, item, clock.now() - timedelta(hours=3))
    assert {c for c, _ in _audience(runtime, session, shop)} == {looker.id} and len(_audience(runtime, session, shop)) == 1


def test_point_expiry_warns_at_30_and_7_days(runtime, session, clock, catcher) -> None:  # type: ignore[no-untyped-def]
    shop, now = _setup(session, clock, "point_expiry")
    make_product(session, shop, now, name="ポイントで買える豆", price=800)
    in_20 = make_customer(session, shop, now, points_balance=1000, points_expire_at=now + timedelta(days=20))
    in_5 = make_customer(session, shop, now, points_balance=300, points_expire_at=now + timedelta(days=5))
    make_customer(session, shop, now, points_balance=300, points_expire_at=now + timedelta(days=60))
    make_customer(session, shop, now, points_balance=0, points_expire_at=now + timedelta(days=5))
    audience = _audience(runtime, session, shop)
    assert audience == {(in_20.id, f"expiry:{now + timedelta(days=20):%Y-%m-%d}:30"),
                        (in_5.id, f"expiry:{now + timedelta(days=5):%Y-%m-%d}:7")}
    mails = {m["To"].addresses[0].addr_spec: m for m in _delivered(runtime, session, shop, catcher)}
    text = mails[in_20.email].get_body(("plain",)).get_content()
    assert "1000 ポイント" in text and "ポイントで買える豆" in text
    assert "ポイントで買える豆" not in mails[in_5.email].get_body(("plain",)).get_content()  # 800 > 300 points


def test_point_statement_goes_monthly_to_customers_with_a_balance(runtime, session, clock) -> None:  # type: ignore[no-untyped-def]
    shop, now = _setup(session, clock, "point_statement")
    saver = make_customer(session, shop, now, points_balance=50)
    make_customer(session, shop, now, points_balance=0)
    assert _audience(runtime, session, shop) == {(saver.id, "statement:2026-11")}
    clock.advance(days=5)
    assert len(_audience(runtime, session, shop)) == 1  # once a month
    clock.advance(days=11)  # December
    assert {t for _, t in _audience(runtime, session, shop)} == {"statement:2026-11", "statement:2026-12"}


def test_a_periodic_pass_run_again_writes_nothing_twice(runtime, session, clock) -> None:  # type: ignore[no-untyped-def]
    # Given this month's statements written, and the period's run marker lost (as if restored from a backup)
    shop, now = _setup(session, clock, "point_statement")
    savers = [make_customer(session, shop, now, points_balance=50) for _ in range(3)]
    assert len(_audience(runtime, session, shop)) == 3
    session.execute(delete(ScenarioRun))
    session.commit()
    # When the pass runs again an hour later
    clock.advance(hours=1)
    assert run_shop_tick(runtime, shop.id) == []
    # Then each saver still has exactly one statement, sent on the first pass's schedule
    rows = session.execute(select(Message.customer_id, Message.scheduled_at)).all()
    assert sorted(c for c, _ in rows) == sorted(c.id for c in savers) and len({at for _, at in rows}) == 1


def test_points_presets_say_why_they_cannot_run_without_point_data(session, clock) -> None:  # type: ignore[no-untyped-def]
    from scenarios import SCENARIOS

    shop = make_shop(session, clock.now())
    make_customer(session, shop, clock.now())
    assert "ポイント" in SCENARIOS["point_expiry"].unsupported_reason(session, shop)
    assert SCENARIOS["cart_recovery"].unsupported_reason(session, shop) is None


def test_ranking_goes_from_monday_10_00_shop_time_to_active_customers(runtime, session, clock) -> None:  # type: ignore[no-untyped-def]
    clock.at = MONDAY_NOON_JST - timedelta(hours=3)  # Monday 09:00 in Tokyo
    shop, now = _setup(session, clock, "ranking")
    item = make_product(session, shop, now)
    active, _lapsed = make_customer(session, shop, now, last_order_at=now - timedelta(days=30)), \
        make_customer(session, shop, now, last_order_at=now - timedelta(days=400))
    make_order(session, shop, active, now - timedelta(days=2), [item])
    assert _audience(runtime, session, shop) == set()
    clock.at = MONDAY_NOON_JST
    assert _audience(runtime, session, shop) == {(active.id, "ranking:2026-W48")}


def test_recommendation_14_days_after_an_order_and_monthly(runtime, session, clock) -> None:  # type: ignore[no-untyped-def]
    shop, now = _setup(session, clock, "recommendation")
    item = make_product(session, shop, now)
    recent = make_customer(session, shop, now, last_order_at=now - timedelta(days=14, hours=1))
    order = make_order(session, shop, recent, now - timedelta(days=14, hours=1), [item])
    idle = make_customer(session, shop, now, last_order_at=now - timedelta(days=200))
    audience = _audience(runtime, session, shop)
    assert audience == {(recent.id, f"reco:order:{order.id}"), (recent.id, "reco:month:2026-11")}
    assert idle.id not in {c for c, _ in audience}


def test_post_purchase_steps_follow_each_order(runtime, session, clock, catcher) -> None:  # type: ignore[no-untyped-def]
    shop, now = _setup(session, clock, "post_purchase")
    item = make_product(session, shop, now, name="煎茶", group_code="TEA")
    a, b, c = (make_customer(session, shop, now) for _ in range(3))
    thanks = make_order(session, shop, a, now - timedelta(hours=2), [item])
    survey = make_order(session, shop, b, now - timedelta(days=7, hours=1), [item])
    d90 = make_order(session, shop, c, now - timedelta(days=90, hours=5), [item])
    make_order(session, shop, c, now - timedelta(days=50), [item])  # between steps: nothing
    assert _audience(runtime, session, shop) == {
        (a.id, f"post:{thanks.id}:thanks"), (b.id, f"post:{survey.id}:survey"), (c.id, f"post:{d90.id}:d90")}
    mails = _delivered(runtime, session, shop, catcher)
    subjects = {m["Subject"] for m in mails}
    assert "【テスト商店】ご購入ありがとうございました" in subjects and "【テスト商店】商品はいかがですか？" in subjects
    # every step greets the customer by name, in both parts; no template tag is left in either
    for mail, person in zip(sorted(mails, key=lambda m: str(m["To"])), sorted((a, b, c), key=lambda p: p.email),
                            strict=True):
        for kind in ("plain", "html"):
            body = mail.get_body((kind,)).get_content()
            assert f"{person.name} 様、" in body and "{{" not in body and "{%" not in body


def test_winback_after_180_days_without_an_order(runtime, session, clock) -> None:  # type: ignore[no-untyped-def]
    shop, now = _setup(session, clock, "winback")
    lapsed = make_customer(session, shop, now, last_order_at=now - timedelta(days=185))
    make_customer(session, shop, now, last_order_at=now - timedelta(days=100))
    make_customer(session, shop, now, last_order_at=now - timedelta(days=900))  # lapsed long before: not blasted
    assert _audience(runtime, session, shop) == {(lapsed.id, f"winback:{(now - timedelta(days=185)):%Y-%m-%d}")}


def test_stock_trigger_restock_and_few_left_for_interested_customers(runtime, session, clock, catcher) -> None:  # type: ignore[no-untyped-def]
    shop, now = _setup(session, clock, "stock_trigger")
    back = make_product(session, shop, now, name="再入荷の豆", stock=10, restocked_at=now - timedelta(hours=1))
    few = make_product(session, shop, now, name="残りわずかの器", stock=2, low_stock_at=now - timedelta(hours=1))
    viewer, carter, buyer, stranger = (make_customer(session, shop, now) for _ in range(4))
    make_view(session, shop, viewer, back, now - timedelta(days=3))
    make_view(session, shop, buyer, back, now - timedelta(days=3))
    make_order(session, shop, buyer, now - timedelta(minutes=30), [back])
    make_cart(session, shop, carter, [few], now - timedelta(days=1))
    audience = _audience(runtime, session, shop)
    day = f"{now - timedelta(hours=1):%Y-%m-%d}"
    assert audience == {(viewer.id, f"restock:{back.id}:{day}"), (carter.id, f"low:{few.id}:{day}")}
    subjects = {m["Subject"] for m in _delivered(runtime, session, shop, catcher)}
    assert subjects == {"【テスト商店】再入荷のお知らせ", "【テスト商店】残りわずかです"}


def test_product_group_rules_merge_codes(session, clock) -> None:  # type: ignore[no-untyped-def]
    from plugin.storage.models import GroupingRule, Product
    from plugin.storage.product_groups import apply_grouping_rules

    shop = make_shop(session, clock.now())
    sample = make_product(session, shop, clock.now(), code="TEA-S")
    regular = make_product(session, shop, clock.now(), code="TEA-R")
    session.add(GroupingRule(shop_id=shop.id, codes="TEA-S\nTEA-R", group_name="TEA", created_at=clock.now()))
    session.commit()
    apply_grouping_rules(session, shop.id)
    session.commit()
    session.expire_all()
    assert {session.get(Product, p.id).group_code for p in (sample, regular)} == {"TEA"}

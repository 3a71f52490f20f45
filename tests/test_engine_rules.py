"""The rules every scenario obeys, stated as a merchant would notice them."""
from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from plugin.console.scenarios import set_scenario
from plugin.delivery.batch import deliver, deliver_batch
from plugin.engine import tick as tick_module
from plugin.engine.tick import run_shop_tick
from plugin.gates.decisions import explain
from plugin.jobs.worker import start_worker
from plugin.measurement.links import attribute_orders
from plugin.measurement.reports import scenario_report
from plugin.storage.models import Conversion, Lease, Message, MessageEvent, MessageStatus, Product
from tests.factories import enable, idle_cart_shop, make_cart, make_customer, make_order, make_product
from tests.live import wait_until


def _statuses(session, shop) -> dict[int, list[str]]:  # type: ignore[no-untyped-def]
    session.expire_all()
    out: dict[int, list[str]] = {}
    for customer_id, status in session.execute(select(Message.customer_id, Message.status)
                                               .where(Message.shop_id == shop.id).order_by(Message.id)):
        out.setdefault(customer_id, []).append(str(status))
    return out


def test_idle_cart_gets_exactly_one_reminder_when_ten_ticks_and_two_workers_overlap(runtime, session, clock, catcher):  # type: ignore[no-untyped-def]
    shop, people, _ = idle_cart_shop(session, clock.now(), customers=8)
    worker = start_worker(runtime, threads=2)
    try:
        ticks = [threading.Thread(target=lambda: runtime.tasks.deliver(
            run_shop_tick(runtime, shop.id), clock.now())) for _ in range(10)]
        for t in ticks:
            t.start()
        for t in ticks:
            t.join()
        assert wait_until(lambda: len(catcher.snapshot()) >= 8, timeout=30)
        runtime.tasks.sweep_outbox()
        time.sleep(1)  # let any duplicate hand-off run out
    finally:
        worker.stop()
    assert sorted(m["To"].addresses[0].addr_spec for m in catcher.snapshot()) == sorted(p.email for p in people)


def test_nobody_gets_two_scenario_messages_within_24_hours(runtime, session, clock, catcher):  # type: ignore[no-untyped-def]
    shop, people, _ = idle_cart_shop(session, clock.now(), customers=1)
    people[0].points_balance = 500
    session.add(people[0])
    session.commit()
    enable(session, shop, "point_statement", clock.now())
    run_shop_tick(runtime, shop.id)
    written = session.execute(select(Message.id, Message.scheduled_at).order_by(Message.scheduled_at)).all()
    assert len(written) == 2  # both written: the cart now, the statement deferred past the cap
    assert written[1][1] - written[0][1] >= timedelta(hours=24)
    for message_id, _ in written:
        deliver(runtime, message_id)
    assert [m["Subject"] for m in catcher.snapshot()] == ["【テスト商店】カートに商品が残っています"]
    decision = session.execute(select(Message.decision).where(Message.scenario_key == "point_statement")).scalar()
    assert "頻度上限: 24時間以内に別のメッセージがあるため延期（深夜帯は配信時に確認）" in explain(decision)
    assert "frequency cap: deferred 24 h after another message (quiet hours checked at delivery)" in explain(decision, "en")


def test_message_due_at_23_00_lands_at_08_00(runtime, session, clock) -> None:  # type: ignore[no-untyped-def]
    clock.at = datetime(2026, 11, 20, 14, 0, tzinfo=UTC)  # 23:00 in Tokyo
    shop, _, _ = idle_cart_shop(session, clock.now(), customers=1)
    assert run_shop_tick(runtime, shop.id) == []  # nothing to hand to the broker tonight
    (message_id, due), = session.execute(select(Message.id, Message.scheduled_at)).all()
    assert due == datetime(2026, 11, 20, 23, 0, tzinfo=UTC)  # 08:00 the next morning in Tokyo
    assert deliver(runtime, message_id)[0] == "skipped"  # not yet due
    reasons = explain(session.get(Message, message_id).decision, "en", "Asia/Tokyo")
    assert reasons[:3] == ["consent: opted in, not suppressed", "frequency cap: ok", "quiet hours: deferred to 2026-11-21 08:00"]
    assert "深夜帯: 2026-11-21 08:00 まで延期" in explain(session.get(Message, message_id).decision)


def test_sold_out_item_is_never_promoted(runtime, session, clock, catcher) -> None:  # type: ignore[no-untyped-def]
    shop, people, kept = idle_cart_shop(session, clock.now(), customers=0)
    gone = make_product(session, shop, clock.now(), name="完売した商品", stock=5)
    person = make_customer(session, shop, clock.now())
    make_cart(session, shop, person, [kept, gone], clock.now() - timedelta(hours=2))
    (message_id, _), = run_shop_tick(runtime, shop.id)
    gone.stock = 0
    session.add(gone)
    session.commit()
    assert deliver(runtime, message_id)[0] == "sent"
    text = catcher.snapshot()[0].get_body(("plain",)).get_content()
    assert kept.name in text and "完売した商品" not in text


def test_reminder_whose_items_all_sold_out_is_cancelled(runtime, session, clock, catcher) -> None:  # type: ignore[no-untyped-def]
    shop, _, product = idle_cart_shop(session, clock.now(), customers=1)
    (message_id, _), = run_shop_tick(runtime, shop.id)
    session.execute(Product.__table__.update().values(stock=0))  # type: ignore[attr-defined]
    session.commit()
    assert deliver(runtime, message_id)[0] == "cancelled" and catcher.snapshot() == []
    assert "stock" in session.get(Message, message_id).last_error


def test_control_group_never_receives_and_is_counted(runtime, session, clock, catcher) -> None:  # type: ignore[no-untyped-def]
    shop, people, _ = idle_cart_shop(session, clock.now(), customers=40)
    from plugin.storage.models import ScenarioSetting

    session.execute(ScenarioSetting.__table__.update().values(holdout_percent=50))  # type: ignore[attr-defined]
    session.commit()
    written = run_shop_tick(runtime, shop.id)
    deliver_batch(runtime, [m for m, _ in written])
    controls = set(session.execute(select(Message.to_address).where(Message.status == MessageStatus.control)).scalars())
    received = {m["To"].addresses[0].addr_spec for m in catcher.snapshot()}
    assert 5 < len(controls) < 35 and not controls & received
    assert controls | received == {p.email for p in people}
    report = scenario_report(session, shop, clock.now())
    cart = next(s for s in report["scenarios"] if s["key"] == "cart_recovery")
    assert cart["lift"]["control"] == len(controls) and cart["lift"]["treated"] == len(received)
    # and each control row says why it was not sent
    control_decisions = session.execute(select(Message.decision).where(Message.status == MessageStatus.control)).scalars()
    assert {explain(d, "en")[-1] for d in control_decisions} == {"holdout: control group (50%), not sent"}
    # and the holdout is deterministic: the same customers are control on every trigger
    assert run_shop_tick(runtime, shop.id) == []


def test_a_decision_written_before_the_tokens_reads_as_it_was_written() -> None:
    legacy = "consent: opted in, not suppressed; cap: ok; quiet hours: ok; holdout: treatment"
    assert explain(legacy) == ["consent: opted in, not suppressed", "cap: ok", "quiet hours: ok", "holdout: treatment"]
    assert explain("cap=deferred;holdout=treatment;delivery=deferred@2026-11-21T23:00:00+00:00", "en")[-1] == \
        "at delivery: deferred to 2026-11-22 08:00 (frequency cap or quiet hours)"


def test_turning_a_scenario_off_cancels_its_pending_sends(runtime, session, clock, catcher) -> None:  # type: ignore[no-untyped-def]
    clock.at = datetime(2026, 11, 20, 14, 0, tzinfo=UTC)  # quiet hours: the reminders wait for morning
    shop, _, _ = idle_cart_shop(session, clock.now(), customers=3)
    run_shop_tick(runtime, shop.id)
    written = session.execute(select(Message.id, Message.scheduled_at)).all()
    assert len(written) == 3
    set_scenario(session, shop, "cart_recovery", {"enabled": "0"}, clock.now())
    session.commit()
    clock.advance(hours=10)
    assert {deliver(runtime, m)[0] for m, _ in written} == {"skipped"}
    assert set(session.execute(select(Message.status)).scalars()) == {MessageStatus.cancelled}
    assert catcher.snapshot() == []


def test_order_after_a_click_is_attributed_once(runtime, session, clock, catcher) -> None:  # type: ignore[no-untyped-def]
    shop, people, product = idle_cart_shop(session, clock.now(), customers=1)
    (message_id, _), = run_shop_tick(runtime, shop.id)
    deliver(runtime, message_id)
    session.add(MessageEvent(shop_id=shop.id, message_id=message_id, kind="click", occurred_at=clock.now()))
    session.commit()
    make_order(session, shop, people[0], clock.now() + timedelta(days=1), [product])
    make_order(session, shop, people[0], clock.now() + timedelta(days=9), [product])  # outside the 5-day window
    assert attribute_orders(session, shop.id, clock.now()) == 1
    assert attribute_orders(session, shop.id, clock.now()) == 0
    assert session.execute(select(func.count()).select_from(Conversion)).scalar() == 1


def test_a_period_written_twice_still_sends_one_statement_per_customer(runtime, session, clock) -> None:  # type: ignore[no-untyped-def]
    # A periodic pass skips the "already written" probe; if its period were run again (say the
    # row marking it done was lost), the outbox's unique key must still refuse the second copy.
    from plugin.engine.tick import Step, write_scenario
    from scenarios import get_scenario

    shop, people, _ = idle_cart_shop(session, clock.now(), customers=3)
    for person in people:
        person.points_balance = 500
        session.add(person)
    session.commit()
    setting = enable(session, shop, "point_statement", clock.now())
    scenario = get_scenario("point_statement")
    step = Step(scenario, setting, scenario.period(clock.now(), shop.timezone), periodic=True,
                channel=runtime.channels[setting.channel])
    write_scenario(session, shop, step, clock.now())
    write_scenario(session, shop, step, clock.now())
    keys = session.execute(select(Message.customer_id).where(Message.scenario_key == "point_statement")).scalars().all()
    assert sorted(keys) == sorted(p.id for p in people)


def test_a_finished_tick_leaves_no_lease_and_the_next_tick_runs_at_once(runtime, session, clock) -> None:  # type: ignore[no-untyped-def]
    # Given a shop whose tick wrote its reminders (the lease goes back with the tick's last write)
    shop, people, _ = idle_cart_shop(session, clock.now(), customers=3)
    assert len(run_shop_tick(runtime, shop.id)) == 3
    session.expire_all()
    assert session.execute(select(func.count()).select_from(Lease)).scalar_one() == 0
    # When a new cart goes idle and the shop is ticked again straight away, that tick is not refused as busy
    customer = make_customer(session, shop, clock.now(), email="late@example.jp")
    make_cart(session, shop, customer, [make_product(session, shop, clock.now(), code="LATE")],
              clock.now() - timedelta(hours=2))
    assert len(run_shop_tick(runtime, shop.id)) == 1


def test_a_tick_that_fails_gives_its_lease_back(runtime, session, clock, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # Given a tick that breaks after writing its presets
    shop, _, _ = idle_cart_shop(session, clock.now(), customers=2)

    def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("database went away")

    monkeypatch.setattr(tick_module, "_write_follow_ups", broken)
    with pytest.raises(RuntimeError):
        run_shop_tick(runtime, shop.id)
    # Then its lease is free: the next tick of the shop runs instead of waiting 10 minutes
    session.expire_all()
    assert session.execute(select(func.count()).select_from(Lease)).scalar_one() == 0

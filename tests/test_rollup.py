"""The dashboard's rollup, kept where things happen (the tick, delivery, tracking, attribution,
cancelling), equals a recomputation from the rows — the SQL aggregates the dashboard used to run
over the messages themselves — after a realistic mixed sequence: sends, a worker that died before
settling and the re-delivery after its leases, a settle repeated from the journal, opens (twice),
a click without an open, a conversion, a suppression, the switch turned off."""
from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import String, and_, case, exists, func, literal, or_, select
from sqlmodel import Session, col

from plugin.console.scenarios import set_standard_scenarios
from plugin.delivery import batch
from plugin.engine.tick import run_shop_tick
from plugin.measurement.links import ATTRIBUTION_WINDOW, attribute_orders, click_url, open_url
from plugin.measurement.periods import Period, local_day, local_period, plus_days
from plugin.measurement.reports import dashboard
from plugin.measurement.rollup import rebuild
from plugin.storage import outbox
from plugin.storage.consent import suppress
from plugin.storage.models import (
    Conversion,
    Message,
    MessageEvent,
    MessageStatus,
    RollupDay,
    RollupHeld,
    Shop,
)
from plugin.web.app import create_app
from tests.factories import idle_cart_shop, make_order

# --- the reference: main's aggregates over the message rows (before the rollup) ----------------


def _reason() -> Any:
    status, error, decision = col(Message.status), col(Message.last_error), col(Message.decision)
    cancelled = status == MessageStatus.cancelled
    return case(
        (status == MessageStatus.control, literal("control", String)),
        (status == MessageStatus.failed, literal("failed", String)),
        (and_(cancelled, error.like("suppressed%")), literal("suppressed", String)),
        (and_(cancelled, error.like("stock:%")), literal("out_of_stock", String)),
        (and_(cancelled, error.like("exit condition%")), literal("exit", String)),
        (cancelled, literal("switched_off", String)),
        (decision.like("%delivery=deferred%"), literal("deferred", String)),
        (decision.like("%cap=deferred%"), literal("capped", String)),
        (decision.like("%quiet=deferred%"), literal("quiet_hours", String)),
        else_=literal("waiting", String))


def _reference(session: Session, shop_id: int, period: Period) -> dict[str, Any]:
    dialect = session.get_bind().dialect.name
    day = local_day(col(Message.sent_at), period, dialect)

    def had(*kinds: str) -> Any:
        return case((exists().where(col(MessageEvent.shop_id) == shop_id, col(MessageEvent.message_id) == col(Message.id),
                                    col(MessageEvent.kind).in_(kinds)), 1), else_=0)

    converted = (select(col(Conversion.message_id), func.count().label("n"), func.sum(Conversion.revenue).label("revenue"))
                 .where(col(Conversion.shop_id) == shop_id).group_by(col(Conversion.message_id)).subquery())
    sent = {(k, d): (n, int(o or 0), int(c or 0), int(v or 0), int(r or 0)) for k, d, n, o, c, v, r in session.execute(
        select(col(Message.scenario_key), day, func.count(), func.sum(had("open", "click")), func.sum(had("click")),
               func.sum(func.coalesce(converted.c.n, 0)), func.sum(func.coalesce(converted.c.revenue, 0)))
        .outerjoin(converted, converted.c.message_id == col(Message.id))
        .where(col(Message.shop_id) == shop_id, col(Message.status) == MessageStatus.sent,
               col(Message.sent_at) >= period.start, col(Message.sent_at) < period.end)
        .group_by(col(Message.scenario_key), day))}
    written = local_day(col(Message.created_at), period, dialect)
    reason = _reason()
    held = {(k, d, r): n for k, d, r, n in session.execute(
        select(col(Message.scenario_key), written, reason, func.count())
        .where(col(Message.shop_id) == shop_id, col(Message.status) != MessageStatus.sent,
               col(Message.created_at) >= period.start, col(Message.created_at) < period.end)
        .group_by(col(Message.scenario_key), written, reason))}
    start = func.coalesce(col(Message.sent_at), col(Message.scheduled_at))
    from plugin.storage.models import Order
    bought = exists().where(col(Order.shop_id) == shop_id, col(Order.customer_id) == col(Message.customer_id),
                            col(Order.canceled).is_(False), col(Order.ordered_at) > start,
                            col(Order.ordered_at) <= plus_days(start, ATTRIBUTION_WINDOW.days, dialect))
    arms = {(k, str(s)): (n, int(b or 0)) for k, s, n, b in session.execute(
        select(col(Message.scenario_key), col(Message.status), func.count(), func.sum(case((bought, 1), else_=0)))
        .where(col(Message.shop_id) == shop_id,
               or_(col(Message.status) == MessageStatus.sent, col(Message.status) == MessageStatus.control),
               start >= period.start, start < period.end)
        .group_by(col(Message.scenario_key), col(Message.status)))}
    return {"sent": sent, "held": held, "arms": arms}


def _from_rollup(session: Session, shop: Shop, period: Period) -> dict[str, Any]:
    board = dashboard(session, shop, period)
    sent = {(k, d.isoformat()): (f.sent, f.opened, f.clicked, f.conversions, f.revenue)
            for (k, d), f in board.cells.items() if f.sent}
    held = {(k, d.isoformat(), r): n for (k, d), f in board.cells.items() for r, n in f.held_back.items() if n}
    arms: dict[tuple[str, str], tuple[int, int]] = {}
    for s in board.scenarios:
        if s.lift.treated:
            arms[(s.key, "sent")] = (s.lift.treated, s.lift.treated_converted)
        if s.lift.control:
            arms[(s.key, "control")] = (s.lift.control, s.lift.control_converted)
    return {"sent": sent, "held": held, "arms": arms}


def _tables(session: Session, shop_id: int) -> tuple[set[Any], set[Any]]:
    days = {tuple(r) for r in session.execute(select(RollupDay).where(col(RollupDay.shop_id) == shop_id)).scalars()
            .all() for r in [[r.scenario_key, r.step, r.day, r.sent, r.opened, r.clicked, r.conversions, r.revenue,
                              r.treated_bought, r.control, r.control_bought]] if any(r[3:])}
    held = {(r.scenario_key, r.day, r.reason, r.n) for r in session.execute(
        select(RollupHeld).where(col(RollupHeld.shop_id) == shop_id)).scalars() if r.n}
    return days, held


def _path(url: str) -> str:
    return url.removeprefix("http://okaeri.test")


def _ids(session: Session, shop_id: int, status: MessageStatus) -> list[int]:
    return list(session.execute(select(col(Message.id)).where(col(Message.shop_id) == shop_id, col(Message.status) == status)
                                .order_by(col(Message.id))).scalars())


def test_the_kept_rollup_equals_a_recomputation_after_a_mixed_sequence(runtime, session, clock, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    now = clock.now()
    shop, people, _ = idle_cart_shop(session, now, customers=16)
    from plugin.storage.models import ScenarioSetting
    setting = session.execute(select(ScenarioSetting).where(col(ScenarioSetting.shop_id) == shop.id)).scalar_one()
    setting.holdout_percent = 25
    session.add(setting)
    session.commit()
    # the tick writes the first reminders (a quarter held out)
    due = [message_id for message_id, _ in run_shop_tick(runtime, shop.id or 0)]
    assert len(due) >= 8 and _ids(session, shop.id or 0, MessageStatus.control)
    # a batch delivered and settled
    batch.deliver_batch(runtime, due[:4])
    # a worker that sent its batch and died before settling it; after its leases, another takes them
    crashed = due[4:8]
    if batch.marks_for(runtime) is not None:  # (with marks in the row itself there is nothing to re-send)
        with monkeypatch.context() as patched:
            patched.setattr(batch.outbox, "settle_many", lambda *a: (_ for _ in ()).throw(SystemExit("killed")))
            with pytest.raises(SystemExit):
                batch.deliver_batch(runtime, crashed)
        clock.advance(seconds=outbox.LEASE.total_seconds() + 1)
    batch.deliver_batch(runtime, crashed)
    # a batch settled whose marks outlived the settle (killed before forgetting them): settled again at restart
    with monkeypatch.context() as patched:
        patched.setattr(batch._BatchMarks, "forget", lambda self: None)
        batch.deliver_batch(runtime, due[8:10])
    batch.settle_journaled(runtime)
    sent = _ids(session, shop.id or 0, MessageStatus.sent)
    assert len(sent) == 10
    # opens (one message read twice), a click without an open, a click after an open
    client = TestClient(create_app(runtime))
    clock.advance(hours=1)
    for message_id in (sent[0], sent[0], sent[1], sent[2]):
        assert client.get(_path(open_url(runtime, message_id))).status_code == 200
    for message_id in (sent[2], sent[3], sent[3]):
        client.get(_path(click_url(runtime, message_id, "https://shop.example/")), follow_redirects=False)
    # the clicked customer buys: the sweeper attributes it
    buyer = session.get(Message, sent[3]).customer_id  # type: ignore[union-attr]
    customer = next(p for p in people if p.id == buyer)
    clock.advance(hours=2)
    make_order(session, shop, customer, clock.now())
    attribute_orders(session, shop.id or 0, clock.now())
    attribute_orders(session, shop.id or 0, clock.now())  # again: each order at most once
    # one waiting customer unsubscribes; a day later the second reminders are written, then the switch goes off
    waiting = session.get(Message, due[-1])
    suppress(session, shop.id or 0, "email", waiting.to_address, "unsubscribed", clock.now())  # type: ignore[union-attr]
    session.commit()
    clock.advance(hours=24)
    run_shop_tick(runtime, shop.id or 0)
    today = clock.now().date()
    period = local_period(today - timedelta(days=30), today + timedelta(days=1), shop.timezone)
    assert _from_rollup(session, shop, period) == _reference(session, shop.id or 0, period)  # some still waiting
    set_standard_scenarios(session, shop, False, clock.now())
    session.commit()
    session.expire_all()
    statuses = {str(m.status) for m in session.execute(select(Message).where(col(Message.shop_id) == shop.id)).scalars()}
    assert {"sent", "control", "cancelled"} <= statuses
    # Then every figure the dashboard shows from the rollup equals the aggregate over the rows
    assert _from_rollup(session, shop, period) == _reference(session, shop.id or 0, period)
    # and the kept counters are exactly those a recomputation writes (migration 0025's backfill)
    kept = _tables(session, shop.id or 0)
    rebuild(session, shop)
    session.flush()
    assert _tables(session, shop.id or 0) == kept
    session.rollback()
    opened = sum(r[4] for r in kept[0])
    assert (sum(r[3] for r in kept[0]), opened, sum(r[5] for r in kept[0]), sum(r[6] for r in kept[0])) == (10, 4, 2, 1)


def test_the_backfill_counts_existing_rows_by_the_dashboards_days(runtime, session, clock) -> None:  # type: ignore[no-untyped-def]
    # Given rows written before the rollup existed (sent late in the evening UTC: the next day in Tokyo)
    now = clock.now()
    shop, people, _ = idle_cart_shop(session, now, customers=2)
    at = now.replace(hour=16)  # 01:00 the next day in Tokyo
    for i, person in enumerate(people):
        session.add(Message(shop_id=shop.id, customer_id=person.id, scenario_key="winback", trigger_key=f"w{i}",
                            to_address=person.email, status=MessageStatus.sent if i == 0 else MessageStatus.control,
                            scheduled_at=at + timedelta(days=1), created_at=at, sent_at=at if i == 0 else None))
    session.commit()
    # When the migration's backfill runs
    rebuild(session, shop)
    session.commit()
    # Then the sent row counts on its Tokyo day, the held-out row on the day written and, for the arm, the day due
    days, held = _tables(session, shop.id or 0)
    tokyo = (at + timedelta(hours=9)).date()
    assert ("winback", "all", tokyo, 1, 0, 0, 0, 0, 0, 0, 0) in days
    assert ("winback", "all", tokyo + timedelta(days=1), 0, 0, 0, 0, 0, 0, 1, 0) in days
    assert held == {("winback", tokyo, "control", 1)}
    assert date.fromisoformat(tokyo.isoformat()) == tokyo

"""Reading the dashboard's rollups, rebuilding them from the rows, and the holdout arms' "bought".

The counters are written where things happen (`plugin.storage.rollup`). One part is not:
- "bought within the attribution window" of the sent and held-out arms is added as orders arrive,
  read in id order from where the rollup last stopped (`catch_up_orders`, before each read): a
  message counts once, with the first order of its customer inside its window. An order cancelled
  after it was read still counts (the arms compare conversion, not net revenue).

`rebuild` recomputes a shop's rollup from its rows (migration 0022's backfill, and the test that
the kept counters equal a recomputation).
"""
from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlalchemy import ColumnElement, String, and_, case, delete, exists, func, literal, or_, select, update
from sqlalchemy.orm import aliased
from sqlmodel import Session, col

from plugin.measurement.links import ATTRIBUTION_WINDOW
from plugin.measurement.periods import Period, local_day, local_period, plus_days
from plugin.storage.models import (
    Conversion,
    Message,
    MessageEvent,
    MessageStatus,
    Order,
    RollupDay,
    RollupHeld,
    RollupMark,
    Shop,
)
from plugin.storage.models.messages import status_is
from plugin.storage.rollup import (
    DAY_COLUMNS,
    TEMPLATE_PREFIX,
    add_days,
    add_held,
    ended_reason,
    local_date,
    step_of,
    step_sql,
    waiting_class,
)
from plugin.storage.upsert import insert_ignore, table_of

__all__ = ["queued_in", "day_figures", "held_figures", "step_figures", "preset_counts", "catch_up_orders", "rebuild",
           "ENDED_REASONS"]

ENDED_REASONS = ("control", "suppressed", "out_of_stock", "exit", "switched_off", "failed")
WAITING_REASONS = ("capped", "quiet_hours", "deferred", "waiting")
_PRESETS = ("post_purchase", "cart_recovery", "point_expiry")


def queued_in(session: Session, shop_id: int) -> ColumnElement[bool]:
    """The shop's condition for a read of the queue (with `status_is(pending or sending)`). On
    SQLite as `shop_id + 0`: given `shop_id = ?` it walks the shop's whole range of the trigger key
    (every message the shop ever had: 5 s at 5M) rather than the few rows of the partial index;
    SQLAlchemy renders no index hint for SQLite."""
    if session.get_bind().dialect.name == "sqlite":
        return (col(Message.shop_id) + 0) == shop_id
    return col(Message.shop_id) == shop_id


def day_figures(session: Session, shop_id: int, first: date, last: date) -> list[Any]:
    """(scenario, day, sent, opened, clicked, conversions, revenue, treated_bought, control, control_bought)."""
    sums = [func.sum(getattr(RollupDay, c)) for c in DAY_COLUMNS]
    return list(session.execute(
        select(col(RollupDay.scenario_key), col(RollupDay.day), *sums)
        .where(col(RollupDay.shop_id) == shop_id, col(RollupDay.day) >= first, col(RollupDay.day) <= last)
        .group_by(col(RollupDay.scenario_key), col(RollupDay.day))).all())


def held_figures(session: Session, shop_id: int, first: date, last: date) -> list[Any]:
    """(scenario, day, reason, count) of rows written those days and not sent: ended, or still waiting."""
    return list(session.execute(
        select(col(RollupHeld.scenario_key), col(RollupHeld.day), col(RollupHeld.reason), col(RollupHeld.n))
        .where(col(RollupHeld.shop_id) == shop_id, col(RollupHeld.day) >= first, col(RollupHeld.day) <= last,
               col(RollupHeld.reason).in_((*ENDED_REASONS, *WAITING_REASONS)))).all())


def step_figures(session: Session, shop_id: int, key: str) -> dict[str, tuple[int, int, int, int, int]]:
    """Per step of a preset, all time: sent, opened, clicked, conversions, revenue."""
    rows = session.execute(
        select(col(RollupDay.step), func.sum(RollupDay.sent), func.sum(RollupDay.opened), func.sum(RollupDay.clicked),
               func.sum(RollupDay.conversions), func.sum(RollupDay.revenue))
        .where(col(RollupDay.shop_id) == shop_id, col(RollupDay.scenario_key) == key)
        .group_by(col(RollupDay.step))).all()
    return {r[0]: tuple(int(v or 0) for v in r[1:]) for r in rows}  # type: ignore[misc]


def preset_counts(session: Session, shop_id: int, key: str) -> tuple[dict[str, int], dict[str, int]]:
    """A preset's messages by status (sent, pending, control, cancelled, failed), and its template
    failures by kind, all time: from the rollup and the pending index."""
    sent = session.execute(select(func.coalesce(func.sum(RollupDay.sent), 0)).where(
        col(RollupDay.shop_id) == shop_id, col(RollupDay.scenario_key) == key)).scalar_one()
    counts = {"sent": int(sent), "control": 0, "cancelled": 0, "failed": 0}
    kinds: dict[str, int] = {}
    for reason, n in session.execute(
            select(col(RollupHeld.reason), func.sum(RollupHeld.n))
            .where(col(RollupHeld.shop_id) == shop_id, col(RollupHeld.scenario_key) == key)
            .group_by(col(RollupHeld.reason))):
        if reason.startswith("tpl:"):
            kinds[reason.removeprefix("tpl:")] = int(n)
        elif reason in ("control", "failed"):
            counts[reason] += int(n)
        elif reason in ENDED_REASONS:
            counts["cancelled"] += int(n)
    counts["pending"] = int(session.execute(select(func.count()).select_from(Message).where(
        status_is(MessageStatus.pending), queued_in(session, shop_id), col(Message.scenario_key) == key)).scalar_one())
    return counts, kinds


def _start() -> Any:
    return func.coalesce(col(Message.sent_at), col(Message.scheduled_at))


def catch_up_orders(session: Session, shop: Shop) -> int:
    """Add the orders written since the last call to the arms' "bought" counters (committed); how
    many orders were read. Two readers at once: one wins the mark, the other reads nothing."""
    shop_id = shop.id or 0
    top = session.execute(select(func.max(Order.id)).where(col(Order.shop_id) == shop_id)).scalar()
    mark = session.execute(select(col(RollupMark.orders_seen)).where(col(RollupMark.shop_id) == shop_id)).scalar()
    seen = int(mark or 0)
    if top is None or top <= seen:
        session.rollback()
        return 0
    if mark is None:
        won = bool(insert_ignore(session, table_of(RollupMark), [{"shop_id": shop_id, "orders_seen": top}], ["shop_id"]))
    else:
        won = session.execute(update(RollupMark).where(col(RollupMark.shop_id) == shop_id, col(RollupMark.orders_seen) == seen)
                              .values(orders_seen=top)).rowcount == 1  # type: ignore[attr-defined]
    if not won:
        session.rollback()
        return 0
    dialect = session.get_bind().dialect.name
    start, earlier = _start(), aliased(Order)
    end = plus_days(start, ATTRIBUTION_WINDOW.days, dialect)
    rows = session.execute(
        select(col(Message.id), col(Message.scenario_key), col(Message.trigger_step), col(Message.status),
               col(Message.sent_at), col(Message.scheduled_at))
        .select_from(Order)
        .join(Message, and_(col(Message.shop_id) == col(Order.shop_id), col(Message.customer_id) == col(Order.customer_id)))
        .where(col(Order.shop_id) == shop_id, col(Order.id) > seen, col(Order.id) <= top, col(Order.canceled).is_(False),
               or_(col(Message.status) == MessageStatus.sent, col(Message.status) == MessageStatus.control),
               start < col(Order.ordered_at), col(Order.ordered_at) <= end,
               ~exists().where(col(earlier.shop_id) == shop_id, col(earlier.customer_id) == col(Order.customer_id),
                               col(earlier.id) < col(Order.id), col(earlier.canceled).is_(False),
                               col(earlier.ordered_at) > start, col(earlier.ordered_at) <= end))).all()
    days: dict[Any, dict[str, int]] = {}
    counted: set[int] = set()
    for message_id, key, trigger_step, status, sent_at, scheduled_at in rows:
        if message_id in counted:
            continue
        counted.add(message_id)
        sent = status == MessageStatus.sent
        k = (shop_id, key, step_of(key, trigger_step), local_date(sent_at if sent else scheduled_at, shop.timezone))
        cell = days.setdefault(k, {})
        column = "treated_bought" if sent else "control_bought"
        cell[column] = cell.get(column, 0) + 1
    add_days(session, days)
    session.commit()
    return int(top) - seen


def _any_step() -> Any:
    """`step_sql` for whichever preset the row is of."""
    key = col(Message.scenario_key)
    return case(*((key == k, step_sql(k)) for k in _PRESETS), else_=literal("all", String))


def _span(session: Session, shop: Shop) -> Period | None:
    low, high = session.execute(select(func.min(Message.created_at), func.max(func.coalesce(
        Message.sent_at, Message.scheduled_at, Message.created_at))).where(col(Message.shop_id) == shop.id)).one()
    low2 = session.execute(select(func.min(Message.scheduled_at)).where(col(Message.shop_id) == shop.id)).scalar()
    if low is None:
        return None
    first = min(local_date(low, shop.timezone), local_date(low2 or low, shop.timezone)) - timedelta(days=1)
    last = max(local_date(high, shop.timezone), local_date(session.execute(select(func.max(Message.created_at)).where(
        col(Message.shop_id) == shop.id)).scalar() or high, shop.timezone)) + timedelta(days=1)
    return local_period(first, last, shop.timezone)


def rebuild(session: Session, shop: Shop) -> None:
    """Recompute the shop's rollup from its messages, events, conversions and orders (not committed)."""
    shop_id = shop.id or 0
    dialect = session.get_bind().dialect.name
    session.execute(delete(RollupDay).where(col(RollupDay.shop_id) == shop_id))
    session.execute(delete(RollupHeld).where(col(RollupHeld.shop_id) == shop_id))
    session.execute(delete(RollupMark).where(col(RollupMark.shop_id) == shop_id))
    top = session.execute(select(func.max(Order.id)).where(col(Order.shop_id) == shop_id)).scalar()
    session.add(RollupMark(shop_id=shop_id, orders_seen=int(top or 0)))
    period = _span(session, shop)
    if period is None:
        return
    start = _start()
    bought = case((exists().where(
        col(Order.shop_id) == shop_id, col(Order.customer_id) == col(Message.customer_id), col(Order.canceled).is_(False),
        col(Order.ordered_at) > start, col(Order.ordered_at) <= plus_days(start, ATTRIBUTION_WINDOW.days, dialect)), 1),
        else_=0)
    events = (select(col(MessageEvent.message_id).label("message_id"),
                     func.max(case((col(MessageEvent.kind).in_(("open", "click")), 1), else_=0)).label("opened"),
                     func.max(case((col(MessageEvent.kind) == "click", 1), else_=0)).label("clicked"))
              .where(col(MessageEvent.shop_id) == shop_id).group_by(col(MessageEvent.message_id)).subquery())
    wins = (select(col(Conversion.message_id).label("message_id"), func.count().label("n"),
                   func.sum(Conversion.revenue).label("revenue"))
            .where(col(Conversion.shop_id) == shop_id).group_by(col(Conversion.message_id)).subquery())
    step = _any_step().label("step")
    days: dict[Any, dict[str, int]] = {}

    def cell(key: str, step_name: str, day: str) -> dict[str, int]:
        return days.setdefault((shop_id, key, step_name, date.fromisoformat(day)), {})

    sent_day = local_day(col(Message.sent_at), period, dialect).label("day")
    for key, step_name, day, n, opened, clicked, conversions, revenue, won in session.execute(
            select(col(Message.scenario_key), step, sent_day, func.count(), func.sum(func.coalesce(events.c.opened, 0)),
                   func.sum(func.coalesce(events.c.clicked, 0)), func.sum(func.coalesce(wins.c.n, 0)),
                   func.sum(func.coalesce(wins.c.revenue, 0)), func.sum(bought))
            .select_from(Message).outerjoin(events, events.c.message_id == col(Message.id))
            .outerjoin(wins, wins.c.message_id == col(Message.id))
            .where(col(Message.shop_id) == shop_id, col(Message.status) == MessageStatus.sent, col(Message.sent_at).is_not(None))
            .group_by(col(Message.scenario_key), step, sent_day)):
        if day is None:
            continue  # a time SQLite cannot read as one: the dashboard never counted it either
        c = cell(key, step_name, day)
        c.update(sent=int(n), opened=int(opened or 0), clicked=int(clicked or 0), conversions=int(conversions or 0),
                 revenue=int(revenue or 0), treated_bought=int(won or 0))
    due_day = local_day(col(Message.scheduled_at), period, dialect).label("day")
    for key, step_name, day, n, won in session.execute(
            select(col(Message.scenario_key), step, due_day, func.count(), func.sum(bought))
            .where(col(Message.shop_id) == shop_id, col(Message.status) == MessageStatus.control)
            .group_by(col(Message.scenario_key), step, due_day)):
        if day is None:
            continue
        c = cell(key, step_name, day)
        c.update(control=int(n), control_bought=int(won or 0))
    add_days(session, days)
    written = local_day(col(Message.created_at), period, dialect).label("day")
    held: dict[Any, int] = {}
    error_class = _error_class().label("error")
    for key, day, status, error, n in session.execute(
            select(col(Message.scenario_key), written, col(Message.status), error_class, func.count())
            .where(col(Message.shop_id) == shop_id,
                   col(Message.status).in_((MessageStatus.control, MessageStatus.cancelled, MessageStatus.failed)))
            .group_by(col(Message.scenario_key), written, col(Message.status), error_class)):
        reason = ended_reason(status, error or "")
        if reason is None or day is None:
            continue
        k = (shop_id, key, date.fromisoformat(day), reason)
        held[k] = held.get(k, 0) + int(n)
        if status == MessageStatus.failed and (error or "").startswith(TEMPLATE_PREFIX):
            kind = (error or "").removeprefix(TEMPLATE_PREFIX).split(":", 1)[0][:30]
            t = (shop_id, key, date.fromisoformat(day), f"tpl:{kind}")
            held[t] = held.get(t, 0) + int(n)
    why = waiting_class().label("why")
    for key, day, waited, n in session.execute(
            select(col(Message.scenario_key), written, why, func.count())
            .where(col(Message.shop_id) == shop_id,
                   col(Message.status).in_((MessageStatus.pending, MessageStatus.sending)))
            .group_by(col(Message.scenario_key), written, why)):
        if day is None:
            continue
        k = (shop_id, key, date.fromisoformat(day), waited)
        held[k] = held.get(k, 0) + int(n)
    add_held(session, held)


def _error_class() -> Any:
    """last_error reduced to what decides the reason (a template failure keeps its text: its kind)."""
    error = col(Message.last_error)
    return case((error.like("suppressed%"), literal("suppressed", String)),
                (error.like("stock:%"), literal("stock:", String)),
                (error.like("exit condition%"), literal("exit condition", String)),
                (error.like(f"{TEMPLATE_PREFIX}%"), error), else_=literal("", String))

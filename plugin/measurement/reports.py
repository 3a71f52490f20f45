"""What each scenario did and earned in a period: sent, held back by reason, opened, clicked,
conversions, revenue, and the holdout's lift, per scenario and per local day of the shop.

Every figure is a GROUP BY in the database (three queries, each returning a row per scenario and
day at most); Python only adds those rows up. A figure belongs to its message's day in the shop's
zone: sent, opened, clicked, conversions and revenue to the day the message was sent (an open or
an order that comes later counts for the message that earned it, so rates never exceed 100 %),
held back to the day the row was written, the lift to the day the message was sent or, for the
control group, due.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import String, and_, case, exists, func, literal, or_, select
from sqlmodel import Session, col

from plugin.measurement.links import ATTRIBUTION_WINDOW
from plugin.measurement.periods import Period, local_day, local_period, plus_days, week_start
from plugin.storage.models import Conversion, Message, MessageEvent, MessageStatus, Order, Shop
from scenarios import SCENARIOS

__all__ = ["Figures", "Lift", "ScenarioFigures", "Dashboard", "dashboard", "lift", "scenario_report", "REASONS",
           "MIN_ARM", "MAX_INTERVAL"]

Z95 = 1.96
# The lift is shown only when each arm has MIN_ARM messages and the 95 % interval is at most
# MAX_INTERVAL wide (20 percentage points, ± 10); before that the page says there is not enough data.
MIN_ARM = 100
MAX_INTERVAL = 0.20
# Why a written message was not sent (yet), most telling first; see _reason().
REASONS = ("control", "suppressed", "capped", "quiet_hours", "deferred", "waiting", "out_of_stock", "exit",
           "switched_off", "failed")


@dataclass
class Figures:
    """Counts of one scenario (or all) over some days."""

    sent: int = 0
    opened: int = 0
    clicked: int = 0
    conversions: int = 0
    revenue: int = 0
    held_back: dict[str, int] = field(default_factory=dict)

    @property
    def held_back_total(self) -> int:
        return sum(self.held_back.values())

    def add(self, other: Figures) -> None:
        """Add `other`'s counts to these."""
        self.sent += other.sent
        self.opened += other.opened
        self.clicked += other.clicked
        self.conversions += other.conversions
        self.revenue += other.revenue
        for reason, n in other.held_back.items():
            self.held_back[reason] = self.held_back.get(reason, 0) + n


@dataclass(frozen=True)
class Lift:
    """Conversion within the attribution window, sent (treated) against held out (control)."""

    treated: int = 0
    treated_converted: int = 0
    control: int = 0
    control_converted: int = 0

    def _rates(self) -> dict[str, float | None]:
        return lift(self.treated, self.treated_converted, self.control, self.control_converted)

    @property
    def treated_rate(self) -> float | None:
        return self._rates()["treated_rate"]

    @property
    def control_rate(self) -> float | None:
        return self._rates()["control_rate"]

    @property
    def value(self) -> float | None:
        return self._rates()["lift"]

    @property
    def interval(self) -> tuple[float, float] | None:
        rates = self._rates()
        low, high = rates["ci_low"], rates["ci_high"]
        return None if low is None or high is None else (low, high)

    @property
    def enough(self) -> bool:
        """True when the interval is narrow enough to mean something (MIN_ARM, MAX_INTERVAL)."""
        interval = self.interval
        return (interval is not None and self.treated >= MIN_ARM and self.control >= MIN_ARM
                and interval[1] - interval[0] <= MAX_INTERVAL)

    def __add__(self, other: Lift) -> Lift:
        return Lift(self.treated + other.treated, self.treated_converted + other.treated_converted,
                    self.control + other.control, self.control_converted + other.control_converted)


@dataclass
class ScenarioFigures:
    key: str
    name_ja: str
    name_en: str
    figures: Figures
    lift: Lift


@dataclass
class Dashboard:
    """A period's figures: per scenario, in total, and per (scenario, local day)."""

    period: Period
    scenarios: list[ScenarioFigures]
    total: Figures
    total_lift: Lift
    cells: dict[tuple[str, date], Figures]

    def series(self, by: str = "day", key: str | None = None) -> list[tuple[date, Figures]]:
        """Figures per day (or per ISO week, `by="week"`) of the period, zeros included; one scenario's with `key`."""
        buckets: dict[date, Figures] = {}
        for day in self.period.days:
            buckets.setdefault(week_start(day) if by == "week" else day, Figures())
        for (scenario, day), figures in self.cells.items():
            if key is None or scenario == key:
                buckets[week_start(day) if by == "week" else day].add(figures)
        return sorted(buckets.items())


def lift(treated: int, treated_conv: int, control: int, control_conv: int) -> dict[str, float | None]:
    """Incremental conversion rate (treated − control) with a 95 % interval. The interval is
    Agresti–Caffo's (one success and one failure added to each arm): with few or no conversions
    the plain normal interval collapses to 0.0–0.0, which reads as certainty."""
    if not treated or not control:
        return {"treated_rate": None, "control_rate": None, "lift": None, "ci_low": None, "ci_high": None}
    p1, p2 = treated_conv / treated, control_conv / control
    a1, a2 = (treated_conv + 1) / (treated + 2), (control_conv + 1) / (control + 2)
    se = math.sqrt(a1 * (1 - a1) / (treated + 2) + a2 * (1 - a2) / (control + 2))
    return {"treated_rate": p1, "control_rate": p2, "lift": p1 - p2, "ci_low": a1 - a2 - Z95 * se,
            "ci_high": a1 - a2 + Z95 * se}


def dashboard(session: Session, shop: Shop, period: Period) -> Dashboard:
    """The shop's figures for `period`, from three aggregate queries."""
    dialect = session.get_bind().dialect.name
    shop_id = shop.id or 0
    cells: dict[tuple[str, date], Figures] = {}

    def cell(key: str, day: str) -> Figures:
        return cells.setdefault((key, date.fromisoformat(day)), Figures())

    for key, day, sent, opened, clicked, conversions, revenue in _sent_rows(session, shop_id, period, dialect):
        figures = cell(key, day)
        figures.sent, figures.opened, figures.clicked = sent, int(opened or 0), int(clicked or 0)
        figures.conversions, figures.revenue = int(conversions or 0), int(revenue or 0)
    for key, day, reason, n in _held_rows(session, shop_id, period, dialect):
        cell(key, day).held_back[reason] = n
    arms = _arms(session, shop_id, period, dialect)
    scenarios = []
    for key, s in SCENARIOS.items():
        figures = Figures()
        for (scenario, _), day_figures in cells.items():
            if scenario == key:
                figures.add(day_figures)
        scenarios.append(ScenarioFigures(key, s.name_ja, s.name_en, figures, arms.get(key, Lift())))
    total = Figures()
    for row in scenarios:
        total.add(row.figures)
    return Dashboard(period, scenarios, total, sum((r.lift for r in scenarios), Lift()), cells)


def _sent_rows(session: Session, shop_id: int, period: Period, dialect: str) -> list[Any]:
    """(scenario, day, sent, opened, clicked, conversions, revenue) of messages sent in the period."""
    day = local_day(col(Message.sent_at), period, dialect)

    def had(*kinds: str) -> Any:
        return case((exists().where(col(MessageEvent.shop_id) == shop_id, col(MessageEvent.message_id) == col(Message.id),
                                    col(MessageEvent.kind).in_(kinds)), 1), else_=0)

    converted = (select(col(Conversion.message_id), func.count().label("n"), func.sum(Conversion.revenue).label("revenue"))
                 .where(col(Conversion.shop_id) == shop_id).group_by(col(Conversion.message_id)).subquery())
    query = (select(col(Message.scenario_key), day, func.count(), func.sum(had("open", "click")), func.sum(had("click")),
                    func.sum(func.coalesce(converted.c.n, 0)), func.sum(func.coalesce(converted.c.revenue, 0)))
             .outerjoin(converted, converted.c.message_id == col(Message.id))
             .where(col(Message.shop_id) == shop_id, col(Message.status) == MessageStatus.sent,
                    col(Message.sent_at) >= period.start, col(Message.sent_at) < period.end)
             .group_by(col(Message.scenario_key), day))
    return list(session.execute(query).all())


def _reason() -> Any:
    """Why a row was not sent, from its status, its cancellation reason and its gates' tokens."""
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


def _held_rows(session: Session, shop_id: int, period: Period, dialect: str) -> list[Any]:
    """(scenario, day, reason, count) of rows written in the period and not sent."""
    day, reason = local_day(col(Message.created_at), period, dialect), _reason()
    query = (select(col(Message.scenario_key), day, reason, func.count())
             .where(col(Message.shop_id) == shop_id, col(Message.status) != MessageStatus.sent,
                    col(Message.created_at) >= period.start, col(Message.created_at) < period.end)
             .group_by(col(Message.scenario_key), day, reason))
    return list(session.execute(query).all())


def _arms(session: Session, shop_id: int, period: Period, dialect: str) -> dict[str, Lift]:
    """Per scenario: messages sent and held out in the period, and how many of each were followed by
    an order of that customer within the attribution window."""
    start = func.coalesce(col(Message.sent_at), col(Message.scheduled_at))
    bought = exists().where(col(Order.shop_id) == shop_id, col(Order.customer_id) == col(Message.customer_id),
                            col(Order.canceled).is_(False), col(Order.ordered_at) > start,
                            col(Order.ordered_at) <= plus_days(start, ATTRIBUTION_WINDOW.days, dialect))
    query = (select(col(Message.scenario_key), col(Message.status), func.count(), func.sum(case((bought, 1), else_=0)))
             .where(col(Message.shop_id) == shop_id,
                    or_(col(Message.status) == MessageStatus.sent, col(Message.status) == MessageStatus.control),
                    start >= period.start, start < period.end)
             .group_by(col(Message.scenario_key), col(Message.status)))
    arms: dict[str, Lift] = {}
    for key, status, n, converted in session.execute(query):
        arm = Lift(n, int(converted or 0)) if status == MessageStatus.sent else Lift(0, 0, n, int(converted or 0))
        arms[key] = arms.get(key, Lift()) + arm
    return arms


def scenario_report(session: Session, shop: Shop, now: datetime, weeks: int = 8) -> dict[str, Any]:
    """The last `weeks` weeks as JSON for API clients (GET /app/reports): per scenario and ISO week."""
    today = now.astimezone(ZoneInfo(shop.timezone)).date()
    board = dashboard(session, shop, local_period(today - timedelta(weeks=weeks) + timedelta(days=1), today, shop.timezone))
    return {"shop": shop.name, "currency": shop.currency, "weeks": weeks, "scenarios": [
        {"key": row.key, "name": {"ja": row.name_ja, "en": row.name_en},
         "weeks": [{"week": _iso_week(monday), "sent": f.sent, "held_back": f.held_back, "opens": f.opened,
                    "clicks": f.clicked, "conversions": f.conversions, "revenue": f.revenue}
                   for monday, f in board.series("week", row.key) if f.sent or f.held_back],
         "lift": {**lift(row.lift.treated, row.lift.treated_converted, row.lift.control, row.lift.control_converted),
                  "treated": row.lift.treated, "control": row.lift.control, "enough_data": row.lift.enough}}
        for row in board.scenarios]}


def _iso_week(monday: date) -> str:
    year, week, _ = monday.isocalendar()
    return f"{year}-W{week:02d}"

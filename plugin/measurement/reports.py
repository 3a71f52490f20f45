"""What each scenario did and earned in a period: sent, held back by reason, opened, clicked,
conversions, revenue, and the holdout's lift, per scenario and per local day of the shop.

Every figure is read from the rollup kept as messages are settled, opened, clicked and attributed
(`plugin.measurement.rollup`: a row per scenario, step and day, and per scenario, day and reason);
Python only adds those rows up. A figure belongs to its message's day in the shop's
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

from sqlmodel import Session

from plugin.measurement.periods import Period, local_period, week_start
from plugin.measurement.rollup import catch_up_orders, day_figures, held_figures
from plugin.storage.models import Shop
from scenarios import SCENARIOS

__all__ = ["Figures", "Lift", "ScenarioFigures", "Dashboard", "dashboard", "lift", "scenario_report", "REASONS",
           "MIN_ARM", "MAX_INTERVAL"]

Z95 = 1.96
# The lift is shown only when each arm has MIN_ARM messages and the 95 % interval is at most
# MAX_INTERVAL wide (20 percentage points, ± 10); before that the page says there is not enough data.
MIN_ARM = 100
MAX_INTERVAL = 0.20
# Why a written message was not sent (yet), most telling first (plugin.storage.rollup: ended_reason, waiting_reason).
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
    """The shop's figures for `period`, from the rollup's days (plugin.measurement.rollup)."""
    shop_id = shop.id or 0
    catch_up_orders(session, shop)
    cells: dict[tuple[str, date], Figures] = {}
    arms: dict[str, Lift] = {}

    def cell(key: str, day: date | str) -> Figures:
        return cells.setdefault((key, day if isinstance(day, date) else date.fromisoformat(day)), Figures())

    for key, day, sent, opened, clicked, conversions, revenue, treated_bought, control, control_bought in day_figures(
            session, shop_id, period.first, period.last):
        if sent or opened or clicked or conversions or revenue:
            figures = cell(key, day)
            figures.sent, figures.opened, figures.clicked = int(sent or 0), int(opened or 0), int(clicked or 0)
            figures.conversions, figures.revenue = int(conversions or 0), int(revenue or 0)
        arms[key] = arms.get(key, Lift()) + Lift(int(sent or 0), int(treated_bought or 0), int(control or 0),
                                                 int(control_bought or 0))
    for key, day, reason, n in held_figures(session, shop_id, period.first, period.last):
        if n:
            held = cell(key, day).held_back
            held[reason] = held.get(reason, 0) + int(n)
    scenarios = []
    for key, s in SCENARIOS.items():
        figures = Figures()
        for (scenario, _), day_figures_ in cells.items():
            if scenario == key:
                figures.add(day_figures_)
        scenarios.append(ScenarioFigures(key, s.name_ja, s.name_en, figures, arms.get(key, Lift())))
    total = Figures()
    for row in scenarios:
        total.add(row.figures)
    return Dashboard(period, scenarios, total, sum((r.lift for r in scenarios), Lift()), cells)


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

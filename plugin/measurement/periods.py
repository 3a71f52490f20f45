"""Days in the shop's time zone: a reporting period as UTC bounds, and a timestamp's local day in SQL
(PostgreSQL converts with the zone itself; SQLite, which knows no zones, adds the zone's offset,
segment by segment where daylight saving changes it inside the period)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, String, case, cast, func, literal

__all__ = ["Period", "local_period", "local_day", "plus_days", "week_start"]

MAX_DAYS = 366


@dataclass(frozen=True)
class Period:
    """The local days `first`..`last` (inclusive) of zone `tz`, and their UTC bounds [start, end)."""

    first: date
    last: date
    tz: str
    start: datetime
    end: datetime

    @property
    def days(self) -> list[date]:
        return [self.first + timedelta(days=n) for n in range((self.last - self.first).days + 1)]


def local_period(first: date, last: date, tz: str) -> Period:
    """The period from local midnight of `first` to local midnight after `last`."""
    zone = ZoneInfo(tz)
    start = datetime.combine(first, time(), zone).astimezone(UTC)
    end = datetime.combine(last + timedelta(days=1), time(), zone).astimezone(UTC)
    return Period(first, last, tz, start, end)


def week_start(day: date) -> date:
    """The Monday of `day`'s ISO week."""
    return day - timedelta(days=day.weekday())


def local_day(column: Any, period: Period, dialect: str) -> ColumnElement[str]:
    """'YYYY-MM-DD' of `column` (a UTC timestamp within `period`) in the period's zone."""
    if dialect == "postgresql":
        return func.to_char(func.timezone(period.tz, column), "YYYY-MM-DD")
    segments = _offsets(period)
    modifier: ColumnElement[str] = literal(_modifier(segments[-1][1]), String)
    if len(segments) > 1:
        modifier = case(*[(column < until, literal(_modifier(offset), String)) for until, offset in
                          zip((s[0] for s in segments[1:]), (s[1] for s in segments), strict=False)],
                        else_=modifier)
    return cast(func.date(column, modifier), String)


def plus_days(column: Any, days: int, dialect: str) -> ColumnElement[Any]:
    """`column` + `days` days, comparable with stored timestamps on either database."""
    if dialect == "postgresql":
        return column + timedelta(days=days)
    # SQLite stores 'YYYY-MM-DD HH:MM:SS.ffffff'; %f gives milliseconds, so pad to the stored width
    return func.strftime("%Y-%m-%d %H:%M:%f", column, f"+{days} days") + literal("000")


def _modifier(offset_minutes: int) -> str:
    return f"{offset_minutes:+d} minutes"


def _offsets(period: Period) -> list[tuple[datetime, int]]:
    """(from UTC, offset in minutes) for each stretch of one offset inside the period."""
    zone = ZoneInfo(period.tz)

    def offset(at: datetime) -> int:
        return int((at.astimezone(zone).utcoffset() or timedelta()).total_seconds() // 60)

    segments = [(period.start, offset(period.start))]
    at = period.start
    while at < period.end:
        step = at + timedelta(hours=1)
        if offset(step) != segments[-1][1]:
            low, high = at, step  # the change lies in (low, high]: find its minute
            while high - low > timedelta(minutes=1):
                middle = low + (high - low) / 2
                low, high = (low, middle) if offset(middle) != segments[-1][1] else (middle, high)
            minute = high.replace(second=0, microsecond=0)
            segments.append((minute if offset(minute) != segments[-1][1] else high, offset(high)))
        at = step
    return segments

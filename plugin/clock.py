"""The one clock: every 'now' in Okaeri comes from here so tests can move time."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

__all__ = ["Clock", "SystemClock", "OffsetClock", "FrozenClock", "daytime_zone", "as_utc"]


class Clock:
    """Source of the current UTC time (timezone-aware, UTC)."""

    def now(self) -> datetime:
        raise NotImplementedError


class SystemClock(Clock):
    """Wall-clock time."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class OffsetClock(SystemClock):
    """Wall-clock time shifted by a fixed amount (tests that need shop daytime at any hour)."""

    def __init__(self, offset: timedelta) -> None:
        self.offset = offset

    def now(self) -> datetime:
        return super().now() + self.offset


class FrozenClock(Clock):
    """A clock that stands still until moved; for tests and benchmarks."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at

    def advance(self, **delta: float) -> None:
        """Move the clock forward by a timedelta's keyword arguments."""
        self.at = self.at + timedelta(**delta)


def daytime_zone(at: datetime | None = None) -> str:
    """A fixed-offset zone where it is around midday at `at` (default now): for benchmarks and
    tests on the real clock, which mail quiet hours (21:00–08:00 shop time) would hold back."""
    hours = (12 - (at or datetime.now(UTC)).hour) % 24
    hours = hours - 24 if hours > 14 else hours
    return f"Etc/GMT{-hours:+d}" if hours else "UTC"


def as_utc(moment: datetime) -> datetime:
    """A time read back from storage, timezone-aware: SQLite returns stored UTC times without their zone."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)

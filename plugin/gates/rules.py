"""A shop's rules for every scenario: quiet hours and the frequency cap (per-shop settings)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from plugin.storage.models import Shop

__all__ = ["ShopRules", "next_allowed", "DEFAULT"]


@dataclass(frozen=True)
class ShopRules:
    """Nothing lands from quiet_start to quiet_end shop time (equal: never quiet); at most
    cap_count scenario messages per customer within cap_window."""

    timezone: str = "Asia/Tokyo"
    quiet_start: time = time(21, 0)
    quiet_end: time = time(8, 0)
    cap_window: timedelta = timedelta(hours=24)
    cap_count: int = 1

    @classmethod
    def of(cls, shop: Shop | None) -> ShopRules:
        """The shop's rules (the defaults for a shop that is gone)."""
        if shop is None:
            return DEFAULT
        return cls(shop.timezone, time(shop.quiet_start_hour % 24), time(shop.quiet_end_hour % 24),
                   timedelta(hours=shop.cap_window_hours), shop.cap_count)

    def next_allowed(self, moment: datetime) -> datetime:
        """`moment`, or the end of the quiet hours it falls in (in the shop's time zone)."""
        return next_allowed(moment, self.timezone, (self.quiet_start, self.quiet_end))


DEFAULT = ShopRules()


def next_allowed(moment: datetime, timezone: str, quiet: tuple[time, time] = (time(21), time(8))) -> datetime:
    """`moment`, or the next `quiet[1]` in `timezone` if it falls between quiet[0] and quiet[1]."""
    start, end = quiet
    if start == end:
        return moment
    zone = ZoneInfo(timezone)
    local = moment.astimezone(zone)
    now = local.time()
    wraps = start > end  # e.g. 21:00-08:00 spans midnight
    if not ((now >= start or now < end) if wraps else start <= now < end):
        return moment
    day = local.date() + timedelta(days=1) if wraps and now >= start else local.date()
    return datetime.combine(day, end, tzinfo=zone).astimezone(moment.tzinfo)

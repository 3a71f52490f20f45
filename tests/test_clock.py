"""The helper that keeps real-clock tests and benchmarks out of mail quiet hours."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from plugin.clock import daytime_zone
from plugin.gates.rules import next_allowed


def test_daytime_zone_puts_every_hour_of_the_day_outside_quiet_hours() -> None:
    start = datetime(2026, 11, 23, 0, 17, tzinfo=UTC)
    for hour in range(24):
        moment = start + timedelta(hours=hour)
        zone = daytime_zone(moment)
        assert 10 <= moment.astimezone(ZoneInfo(zone)).hour <= 14
        assert next_allowed(moment, zone) == moment  # a message due now goes now

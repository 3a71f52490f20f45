"""What the connectors count for the operator's metrics: time spent waiting on a platform's
request budget or throttle. Prometheus counters in the process's default registry (the app's
`/metrics` serves them); labels are platform names only."""
from __future__ import annotations

from prometheus_client import Counter

__all__ = ["RATE_LIMIT_WAITS", "RATE_LIMIT_WAIT_SECONDS", "waited"]

RATE_LIMIT_WAITS = Counter("okaeri_rate_limit_waits", "Calls that waited for a platform's request budget or throttle.",
                           ["platform"])
RATE_LIMIT_WAIT_SECONDS = Counter("okaeri_rate_limit_wait_seconds", "Seconds spent waiting on platforms' rate limits.",
                                  ["platform"])


def waited(platform: str, seconds: float) -> None:
    """Record one wait of `seconds` on `platform`'s limit."""
    if seconds > 0:
        RATE_LIMIT_WAITS.labels(platform or "unknown").inc()
        RATE_LIMIT_WAIT_SECONDS.labels(platform or "unknown").inc(seconds)

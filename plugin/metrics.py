"""The application's Prometheus metrics, counted where things happen (one process's view; each
web, worker and scheduler process serves its own `/metrics`).

Labels never carry customer data, and never a shop id: shops are unbounded. Scenario keys,
channel and platform names are small fixed sets; shop size is a bucket.
"""
from __future__ import annotations

from prometheus_client import Counter, Histogram

__all__ = [
    "MESSAGES_SENT", "MESSAGES_FAILED", "DELIVERY_LATENCY", "TICK_DURATION", "INTAKE", "intake", "size_bucket",
    "SIZE_BUCKETS", "DELIVERY_REPORTS",
]

MESSAGES_SENT = Counter("okaeri_messages_sent", "Messages a channel accepted.", ["channel", "scenario"])
MESSAGES_FAILED = Counter("okaeri_messages_failed", "Messages that failed for good (permanent or out of retries).",
                          ["channel", "scenario"])
DELIVERY_LATENCY = Histogram(
    "okaeri_delivery_latency_seconds", "From a message's due time to the channel accepting it.", ["channel"],
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600, 24 * 3600))
TICK_DURATION = Histogram(
    "okaeri_tick_duration_seconds", "One shop's scenario tick, by the shop's size in customers.", ["shop_size"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300))
INTAKE = Counter("okaeri_intake", "Platform webhooks and storefront events received, by outcome and reason.",
                 ["kind", "platform", "outcome", "reason"])
DELIVERY_REPORTS = Counter("okaeri_delivery_reports", "Bounces and complaints received after a hand-off, by kind "
                           "(hard_bounce, soft_bounce, complaint; none: not a report) and outcome.",
                           ["channel", "kind", "outcome"])

SIZE_BUCKETS = ((1_000, "<1k"), (10_000, "1k-10k"), (100_000, "10k-100k"), (1_000_000, "100k-1M"))


def intake(kind: str, platform: str, outcome: str, reason: str = "") -> None:
    """Count one inbound request: `kind` webhook or event, `outcome` accepted, duplicate or refused,
    `reason` a short fixed token (bad_signature, rate_limited, invalid, too_large, unknown_shop…)."""
    INTAKE.labels(kind, platform, outcome, reason).inc()


def size_bucket(customers: int) -> str:
    """A shop's size as a bounded label."""
    for limit, label in SIZE_BUCKETS:
        if customers < limit:
            return label
    return ">=1M"

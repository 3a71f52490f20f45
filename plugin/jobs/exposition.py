"""`/metrics`: the process's Prometheus counters, Dramatiq's actor metrics, and gauges read from
the database at scrape time (the outbox backlog, sync lag), cached briefly so a scrape every
few seconds costs the database one small query each.

Dramatiq's own `Prometheus` middleware counts the actors (messages, errors, retries, durations);
it is made for Dramatiq's CLI, which boots a process and forks an exposition server reading
multiprocess files. Here it is booted in-process instead and its metrics join this process's
registry, so the worker's own `/metrics` serves them.
"""
from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import dramatiq
from dramatiq.middleware.prometheus import Prometheus
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlmodel import col

from plugin.clock import as_utc
from plugin.runtime import Runtime
from plugin.storage.models import InstallState, MessageStatus, Shop, SyncState
from plugin.storage.models.messages import Message, status_is

__all__ = ["install_actor_metrics", "metrics_page", "BacklogCollector", "CONTENT_TYPE"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
CACHE_SECONDS = 10.0
_MULTIPROC_VARS = ("PROMETHEUS_MULTIPROC_DIR", "prometheus_multiproc_dir")


class _ActorMetrics(Prometheus):
    """Dramatiq's middleware, its metrics in this process's registry rather than multiprocess files."""

    def after_process_boot(self, broker: dramatiq.Broker) -> None:
        saved = {name: os.environ.get(name) for name in _MULTIPROC_VARS}
        try:
            super().after_process_boot(broker)  # builds its metrics (values are per process: prometheus_client is loaded)
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
        for metric in (self.total_messages, self.total_errored_messages, self.total_retried_messages,
                       self.total_rejected_messages, self.inprogress_messages, self.inprogress_delayed_messages,
                       self.message_durations):
            REGISTRY.register(metric)

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        pass  # no multiprocess files to mark


_installed_lock = threading.Lock()
_installed: _ActorMetrics | None = None


def install_actor_metrics(broker: dramatiq.Broker) -> None:
    """Count this broker's actors with Dramatiq's Prometheus middleware (once per process: the
    metric names are process-wide)."""
    global _installed
    with _installed_lock:
        if _installed is None:
            _installed = _ActorMetrics()
            _installed.after_process_boot(broker)
        if not any(m is _installed for m in broker.middleware):
            broker.add_middleware(_installed)


class BacklogCollector(Collector):
    """Outbox rows waiting or in flight, the age of the oldest overdue one, and each platform's
    sync lag (the least recently synced active shop), read at scrape time."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._cached: tuple[float, list[GaugeMetricFamily]] | None = None
        self._lock = threading.Lock()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self._lock:
            if self._cached is None or time.monotonic() - self._cached[0] > CACHE_SECONDS:
                self._cached = (time.monotonic(), self._read())
            yield from self._cached[1]

    def _read(self) -> list[GaugeMetricFamily]:
        now = self.runtime.clock.now()
        rows = GaugeMetricFamily("okaeri_outbox_rows", "Outbox messages waiting (pending) or claimed (sending).",
                                 labels=["status"])
        oldest = GaugeMetricFamily("okaeri_outbox_oldest_due_seconds",
                                   "Seconds since the oldest pending message fell due (0 when none is overdue).")
        lag = GaugeMetricFamily("okaeri_sync_lag_seconds",
                                "Seconds since the least recently synced active shop of a platform last synced.",
                                labels=["platform"])
        with self.runtime.sessions() as session:
            for status in (MessageStatus.pending, MessageStatus.sending):
                count = session.execute(select(func.count()).select_from(Message).where(status_is(status))).scalar_one()
                rows.add_metric([status.value], float(count))
            due = session.execute(select(func.min(col(Message.scheduled_at))).where(
                status_is(MessageStatus.pending), col(Message.scheduled_at) <= now)).scalar()
            oldest.add_metric([], _age(now, due))
            last_per_shop = (select(col(Shop.platform).label("platform"), func.max(col(SyncState.last_run_at)).label("last"))
                             .join(SyncState, col(SyncState.shop_id) == col(Shop.id), isouter=True)
                             .where(col(Shop.state) == InstallState.active).group_by(col(Shop.id), col(Shop.platform))
                             .subquery())
            for platform, last in session.execute(select(last_per_shop.c.platform, func.min(last_per_shop.c.last))
                                                  .group_by(last_per_shop.c.platform)):
                lag.add_metric([platform], _age(now, last))
        return [rows, oldest, lag]


def _age(now: datetime, then: Any) -> float:
    if then is None:
        return 0.0
    return max(0.0, (now - as_utc(then)).total_seconds())


_collectors: dict[int, CollectorRegistry] = {}


def metrics_page(runtime: Runtime, *, backlog: bool = True) -> bytes:
    """The text exposition of this process's metrics; with `backlog`, the database gauges too."""
    key = id(runtime)
    registry = _collectors.get(key)
    if registry is None:
        registry = CollectorRegistry(auto_describe=True)
        if backlog:
            registry.register(BacklogCollector(runtime))
        _collectors.clear()  # one runtime per process in production; tests build many
        _collectors[key] = registry
    return generate_latest(REGISTRY) + generate_latest(registry)

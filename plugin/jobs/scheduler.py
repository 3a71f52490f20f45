"""The scheduler: enqueues periodic ticks. Safe to run twice: only the lease holder enqueues.

Its lease is short and renewed by a heartbeat (every HEARTBEAT, which also hands over the outbox
rows that fell due or whose worker died); a dead scheduler's standby takes over within
LEASE + HEARTBEAT, and a scheduler that stops cleanly gives the lease back at once.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, select
from sqlmodel import col

from plugin.jobs.broker import requeue_from_dead_workers
from plugin.runtime import Runtime
from plugin.storage import outbox
from plugin.storage.leases import acquire_lease, release_lease
from plugin.storage.models import InstallState, RecommendationSet, ScenarioSetting, Shop, SyncState
from plugin.storage.tick_queue import queue_ticks
from plugin.sync.reconcile import shops_due_for_reconciliation
from plugin.tasks import DELIVER_MESSAGES, REDELIVER_MESSAGES

__all__ = ["Scheduler"]

log = logging.getLogger("okaeri.scheduler")
LEASE_NAME = "scheduler"
SYNC_EVERY = timedelta(minutes=15)
TRAIN_EVERY = timedelta(hours=24)
LEASE = timedelta(seconds=30)
HEARTBEAT = 2.0  # seconds: how soon expired claims and a dead worker's hand-offs are handed over again
DEAD_WORKER_AFTER = timedelta(seconds=5)  # a Redis worker this silent is dead: living ones poll several times a second


class Scheduler:
    """Every `interval` seconds: scenario ticks, due syncs and an outbox sweep; every `heartbeat`
    seconds (at most `interval`): renew the lease and hand over due outbox rows."""

    def __init__(self, runtime: Runtime, interval: float = 60.0, heartbeat: float = HEARTBEAT) -> None:
        self.runtime = runtime
        self.interval = interval
        self.heartbeat = min(heartbeat, interval)
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{id(self)}"
        self.stopping = threading.Event()
        self._stopped = threading.Event()
        self._running = False

    def holds_lease(self) -> bool:
        """Take or renew the scheduler lease; False while another scheduler holds it."""
        return acquire_lease(self.runtime, LEASE_NAME, self.holder, LEASE)

    def run_once(self) -> bool:
        """One round; returns False when another scheduler holds the lease."""
        if not self.holds_lease():
            return False
        now = self.runtime.clock.now()
        tasks = self.runtime.tasks
        with self.runtime.sessions() as session:  # not a shop whose last tick is still queued or running
            due = queue_ticks(session, self._shops_with_scenarios_query(), now)
        for shop_id in due:
            tasks.scenario_tick(shop_id)
        for shop_id in self._shops_due_for_sync(now):
            tasks.sync_shop(shop_id)
        for shop_id in self._shops_due_for_training(now):
            tasks.train_recommender(shop_id)
        for shop_id in shops_due_for_reconciliation(self.runtime, now):
            tasks.reconcile_shop(shop_id)
        tasks.sweep_outbox()
        return True

    def beat(self) -> bool:
        """Between rounds: renew the lease and hand over what fell due (a dead worker's claims)."""
        if not self.holds_lease():
            return False
        # A dead worker's prefetched hand-offs, first in line again (its claims follow below, once
        # their leases ran out; a false alarm costs nothing: the claim is what guards a send).
        requeue_from_dead_workers(self.runtime.broker, [DELIVER_MESSAGES.queue_name, REDELIVER_MESSAGES.queue_name],
                                  dead_for=DEAD_WORKER_AFTER.total_seconds())
        now = self.runtime.clock.now()
        with self.runtime.sessions() as session:
            expired, lost = outbox.handovers(session, now)
        self.runtime.tasks.redeliver([message_id for message_id, _ in expired])
        self.runtime.tasks.deliver(lost, now)
        return True

    def run_forever(self) -> None:
        """Rounds and heartbeats until `stop()`; gives the lease back on the way out."""
        self._running = True
        next_round = 0.0
        try:
            while not self.stopping.is_set():
                try:
                    if time.monotonic() >= next_round:
                        if self.run_once():
                            next_round = time.monotonic() + self.interval
                    else:
                        self.beat()
                except Exception:  # a database hiccup must not stop the clock
                    log.exception("okaeri.scheduler.round-failed")
                self.stopping.wait(self.heartbeat)
        finally:
            self._release()
            self._stopped.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the loop and release the lease, so a standby scheduler takes over at once."""
        self.stopping.set()
        if self._running:
            self._stopped.wait(timeout)
        else:
            self._release()

    def _release(self) -> None:
        try:
            release_lease(self.runtime, LEASE_NAME, self.holder)
        except Exception:  # noqa: BLE001 - the lease then simply runs out
            log.warning("okaeri.scheduler.release-failed")

    @staticmethod
    def _shops_with_scenarios_query() -> Select[Any]:
        return (select(col(Shop.id)).distinct().join(ScenarioSetting, col(ScenarioSetting.shop_id) == Shop.id)
                .where(col(Shop.state) == InstallState.active, col(ScenarioSetting.enabled).is_(True)))

    def _shops_due_for_training(self, now: datetime) -> list[int]:
        """Nightly: shops whose served recommendations are older than a day."""
        with self.runtime.sessions() as session:
            rows = session.execute(
                select(col(Shop.id), col(RecommendationSet.trained_at))
                .join(RecommendationSet, col(RecommendationSet.id) == Shop.recommendation_set_id)
                .where(col(Shop.state) == InstallState.active)).all()
        return [shop_id for shop_id, trained in rows if trained < now - TRAIN_EVERY]

    def _shops_due_for_sync(self, now: datetime) -> list[int]:
        with self.runtime.sessions() as session:
            last = dict(session.execute(
                select(col(SyncState.shop_id), col(SyncState.last_run_at)).where(col(SyncState.resource) == "orders")
            ).all())
            shops = session.execute(
                select(col(Shop.id), col(Shop.installed_at)).where(col(Shop.state) == InstallState.active)).all()
        # A shop with no sync yet had one enqueued at install; retry only if that was long ago.
        return [s for s, installed in shops
                if (last.get(s) or installed or now) < now - SYNC_EVERY]

"""The scheduler: enqueues periodic ticks. Safe to run twice: only the lease holder enqueues."""
from __future__ import annotations

import logging
import os
import socket
import threading
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlmodel import col

from plugin.runtime import Runtime
from plugin.storage.leases import acquire_lease
from plugin.storage.models import InstallState, RecommendationSet, ScenarioSetting, Shop, SyncState

__all__ = ["Scheduler"]

log = logging.getLogger("okaeri.scheduler")
LEASE_NAME = "scheduler"
SYNC_EVERY = timedelta(minutes=15)
TRAIN_EVERY = timedelta(hours=24)


class Scheduler:
    """Every `interval` seconds: scenario ticks, due syncs and an outbox sweep."""

    def __init__(self, runtime: Runtime, interval: float = 60.0) -> None:
        self.runtime = runtime
        self.interval = interval
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{id(self)}"
        self.stopping = threading.Event()

    def run_once(self) -> bool:
        """One round; returns False when another scheduler holds the lease."""
        if not acquire_lease(self.runtime, LEASE_NAME, self.holder, timedelta(seconds=self.interval * 3)):
            return False
        now = self.runtime.clock.now()
        tasks = self.runtime.tasks
        for shop_id in self._shops_with_scenarios():
            tasks.scenario_tick(shop_id)
        for shop_id in self._shops_due_for_sync(now):
            tasks.sync_shop(shop_id)
        for shop_id in self._shops_due_for_training(now):
            tasks.train_recommender(shop_id)
        tasks.sweep_outbox()
        return True

    def run_forever(self) -> None:
        while not self.stopping.is_set():
            try:
                self.run_once()
            except Exception:  # a database hiccup must not stop the clock
                log.exception("okaeri.scheduler.round-failed")
            self.stopping.wait(self.interval)

    def _shops_with_scenarios(self) -> list[int]:
        with self.runtime.sessions() as session:
            return list(session.execute(
                select(col(Shop.id)).distinct().join(ScenarioSetting, col(ScenarioSetting.shop_id) == Shop.id)
                .where(col(Shop.state) == InstallState.active, col(ScenarioSetting.enabled).is_(True))
            ).scalars())

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

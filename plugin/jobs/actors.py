"""Dramatiq actors, declared from plugin.tasks' JOBS table; each calls one function of plugin.jobs.work."""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import dramatiq

from connectors.errors import ProviderDown, RateLimited, Unauthorized
from plugin.jobs import work
from plugin.runtime import Runtime
from plugin.storage.tick_queue import tick_finished
from plugin.tasks import (
    APPLY_HOOK,
    DELIVER_MESSAGES,
    JOBS,
    RECONCILE_SHOP,
    REDELIVER_MESSAGES,
    SCENARIO_TICK,
    SWEEP_OUTBOX,
    SYNC_SHOP,
    TRAIN_RECOMMENDER,
    Job,
)

__all__ = ["register_actors", "OPTIONS"]

log = logging.getLogger("okaeri.actors")

OPTIONS: dict[Job, dict[str, int]] = {  # retries and time limits, in milliseconds
    SYNC_SHOP: {"max_retries": 5, "min_backoff": 15_000, "max_backoff": 600_000, "time_limit": 3_600_000},
    SCENARIO_TICK: {"max_retries": 3, "min_backoff": 5_000, "time_limit": 600_000},
    DELIVER_MESSAGES: {"max_retries": 3, "min_backoff": 1_000, "max_backoff": 60_000, "time_limit": 120_000},
    SWEEP_OUTBOX: {"max_retries": 0, "time_limit": 300_000},
    TRAIN_RECOMMENDER: {"max_retries": 2, "min_backoff": 60_000, "time_limit": 3_600_000},
    REDELIVER_MESSAGES: {"max_retries": 3, "min_backoff": 1_000, "max_backoff": 60_000, "time_limit": 120_000},
    RECONCILE_SHOP: {"max_retries": 2, "min_backoff": 60_000, "max_backoff": 600_000, "time_limit": 3_600_000},
    APPLY_HOOK: {"max_retries": 5, "min_backoff": 5_000, "max_backoff": 300_000, "time_limit": 300_000},
}
PRIORITY: dict[Job, int] = {REDELIVER_MESSAGES: -10}  # lower runs first among what a worker has fetched


def register_actors(runtime: Runtime) -> dict[str, dramatiq.Actor[Any, Any]]:
    """Declare every job's actor on the runtime's broker, closing over the runtime; by actor name."""

    def sync_shop(shop_id: int, full: bool = False) -> None:
        try:
            work.sync_shop(runtime, shop_id, full)
        except RateLimited as exc:
            raise dramatiq.Retry(delay=int(exc.retry_after * 1000)) from exc
        except Unauthorized:
            log.warning("okaeri.sync.revoked", extra={"shop_id": shop_id})
        except ProviderDown:
            raise  # retried by the Retries middleware with backoff

    def reconcile_shop(shop_id: int) -> None:
        try:
            work.reconcile_shop(runtime, shop_id)
        except RateLimited as exc:
            raise dramatiq.Retry(delay=int(exc.retry_after * 1000)) from exc
        except Unauthorized:
            log.warning("okaeri.sync.revoked", extra={"shop_id": shop_id})

    def scenario_tick(shop_id: int) -> None:
        try:
            work.tick_shop(runtime, shop_id)
        finally:  # done or failed: the next round may queue this shop again
            with runtime.sessions() as session:
                tick_finished(session, [shop_id])

    def deliver_message(message_ids: list[int] | int) -> None:
        work.deliver_messages(runtime, message_ids if isinstance(message_ids, list) else [message_ids])

    def sweep_outbox() -> None:
        work.sweep_outbox(runtime)

    def train_recommender(shop_id: int) -> None:
        work.train_recommender(runtime, shop_id)

    def apply_hook(delivery_id: int) -> None:
        try:
            work.apply_hook(runtime, delivery_id)
        except RateLimited as exc:
            raise dramatiq.Retry(delay=int(exc.retry_after * 1000)) from exc
        except Unauthorized:  # the install is revoked; the sweeper's next hand-over marks it ignored
            log.warning("okaeri.hooks.revoked", extra={"delivery_id": delivery_id})

    bodies: dict[Job, Callable[..., None]] = {
        SYNC_SHOP: sync_shop, SCENARIO_TICK: scenario_tick, DELIVER_MESSAGES: deliver_message,
        SWEEP_OUTBOX: sweep_outbox, TRAIN_RECOMMENDER: train_recommender, REDELIVER_MESSAGES: deliver_message,
        RECONCILE_SHOP: reconcile_shop, APPLY_HOOK: apply_hook,
    }
    return {job.actor_name: dramatiq.Actor(bodies[job], broker=runtime.broker, actor_name=job.actor_name,
                                           queue_name=job.queue_name, priority=PRIORITY.get(job, 0),
                                           options=OPTIONS[job])
            for job in JOBS}

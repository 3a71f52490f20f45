"""Dramatiq actors. They stay thin: each calls one service function with a runtime."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import dramatiq

from connectors.errors import ProviderDown, RateLimited, Unauthorized

if TYPE_CHECKING:
    from plugin.runtime import Runtime

__all__ = ["Actors", "register_actors", "DELIVERY_BATCH"]

DELIVERY_BATCH = 50
HANDOFF_HORIZON = timedelta(minutes=5)

log = logging.getLogger("okaeri.actors")


@dataclass
class Actors:
    sync_shop: dramatiq.Actor[Any, Any]
    scenario_tick: dramatiq.Actor[Any, Any]
    deliver_message: dramatiq.Actor[Any, Any]
    sweep_outbox: dramatiq.Actor[Any, Any]
    train_recommender: dramatiq.Actor[Any, Any]

    def enqueue_delivery(self, message_id: int, due: datetime, now: datetime) -> None:
        """Hand one message to the broker, delayed until it is due."""
        self.enqueue_deliveries([(message_id, due)], now)

    def enqueue_deliveries(self, messages: list[tuple[int, datetime]], now: datetime) -> None:
        """Hand messages due soon to the broker in batches, each delayed until due.

        Messages due later than HANDOFF_HORIZON stay in the outbox: the sweeper hands them over
        when they fall due, so no broker holds thousands of day-long delays.
        """
        by_due: dict[datetime, list[int]] = {}
        for message_id, due in messages:
            if due - now <= HANDOFF_HORIZON:
                by_due.setdefault(max(due, now), []).append(message_id)
        for due, ids in by_due.items():
            delay_ms = int((due - now).total_seconds() * 1000)
            for start in range(0, len(ids), DELIVERY_BATCH):
                self.deliver_message.send_with_options(args=(ids[start:start + DELIVERY_BATCH],),
                                                       delay=delay_ms or None)


def _shops_with_new_orders(session: Any) -> list[int]:
    """Shops that have click events (only they can have conversions to attribute)."""
    from sqlalchemy import select

    from plugin.storage.models import MessageEvent

    return list(session.execute(select(MessageEvent.shop_id).where(MessageEvent.kind == "click").distinct()).scalars())


def register_actors(runtime: Runtime) -> Actors:
    """Declare the actors on the runtime's broker, closing over the runtime."""
    from plugin.delivery import batch as delivery
    from plugin.engine import tick as engine
    from plugin.measurement.links import attribute_orders
    from plugin.storage import outbox
    from plugin.sync.run import run_sync

    def sync_shop(shop_id: int, full: bool = False) -> None:
        try:
            run_sync(runtime, shop_id, full=full)
            if full:  # a first (or full) sync gives the recommender something to learn from
                runtime.actors.train_recommender.send(shop_id)
        except RateLimited as exc:
            raise dramatiq.Retry(delay=int(exc.retry_after * 1000)) from exc
        except Unauthorized:
            log.warning("okaeri.sync.revoked", extra={"shop_id": shop_id})
        except ProviderDown:
            raise  # retried by the Retries middleware with backoff

    def scenario_tick(shop_id: int) -> None:
        now = runtime.clock.now()
        with runtime.sessions() as session:
            since = outbox.high_water(session)
        runtime.actors.enqueue_deliveries(engine.run_shop_tick(runtime, shop_id), now)
        with runtime.sessions() as session:  # after the hand-off: deliveries need not wait for it
            outbox.analyze_if_grown(session, since)

    def deliver_message(message_ids: list[int] | int) -> None:
        ids = message_ids if isinstance(message_ids, list) else [message_ids]
        outcomes = delivery.deliver_batch(runtime, ids)
        retries = [(mid, at) for mid, (_, at) in outcomes.items() if at is not None]  # retry or deferred
        if retries:
            runtime.actors.enqueue_deliveries(retries, runtime.clock.now())

    def sweep_outbox() -> None:
        now = runtime.clock.now()
        with runtime.sessions() as session:
            due = outbox.due_for_enqueue(session, now)
            for shop_id in _shops_with_new_orders(session):
                attribute_orders(session, shop_id, now)
        runtime.actors.enqueue_deliveries(due, now)

    def train_recommender(shop_id: int) -> None:
        from recommender.serving import train_shop

        with runtime.sessions() as session:
            train_shop(session, shop_id, runtime.clock.now())

    def declare(fn: Any, queue: str, **options: Any) -> dramatiq.Actor[Any, Any]:
        return dramatiq.Actor(fn, broker=runtime.broker, actor_name=fn.__name__, queue_name=queue,
                              priority=0, options=options)

    return Actors(
        sync_shop=declare(sync_shop, "sync", max_retries=5, min_backoff=15_000, max_backoff=600_000,
                          time_limit=3_600_000),
        scenario_tick=declare(scenario_tick, "scenarios", max_retries=3, min_backoff=5_000,
                              time_limit=600_000),
        deliver_message=declare(deliver_message, "delivery", max_retries=3, min_backoff=1_000,
                                max_backoff=60_000, time_limit=120_000),
        sweep_outbox=declare(sweep_outbox, "scenarios", max_retries=0, time_limit=300_000),
        train_recommender=declare(train_recommender, "training", max_retries=2, min_backoff=60_000,
                                  time_limit=3_600_000),
    )

"""Enqueueing work: one method per kind of job, sent to the broker by actor and queue name.

A process that only enqueues (the web app, the scheduler) needs the broker and this module, not
the actors: they are declared, from the same JOBS table, by the processes that consume the work
(see plugin.jobs.actors).
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import dramatiq

from plugin.storage.outbox import HANDOFF_HORIZON

__all__ = ["Job", "Tasks", "JOBS", "SYNC_SHOP", "RECONCILE_SHOP", "SCENARIO_TICK", "DELIVER_MESSAGES", "SWEEP_OUTBOX",
           "TRAIN_RECOMMENDER", "REDELIVER_MESSAGES", "DELIVERY_BATCH", "APPLY_HOOK"]

DELIVERY_BATCH = 50  # messages per delivery job: one claim, one SMTP session and one settle for all


@dataclass(frozen=True)
class Job:
    """One kind of work: the actor that runs it and the queue it waits in."""

    actor_name: str
    queue_name: str


SYNC_SHOP = Job("sync_shop", "sync")
SCENARIO_TICK = Job("scenario_tick", "scenarios")
DELIVER_MESSAGES = Job("deliver_message", "delivery")
SWEEP_OUTBOX = Job("sweep_outbox", "scenarios")
TRAIN_RECOMMENDER = Job("train_recommender", "training")
REDELIVER_MESSAGES = Job("redeliver_message", "redelivery")  # a dead worker's claims: a queue no backlog fills
RECONCILE_SHOP = Job("reconcile_shop", "sync")
APPLY_HOOK = Job("apply_hook", "hooks")  # a stored platform webhook delivery (plugin.sync.hook_apply)
JOBS = (SYNC_SHOP, SCENARIO_TICK, DELIVER_MESSAGES, SWEEP_OUTBOX, TRAIN_RECOMMENDER, REDELIVER_MESSAGES, RECONCILE_SHOP,
        APPLY_HOOK)


class Tasks:
    """Enqueue each kind of work on one broker, whose queues it declares (the in-process broker
    refuses a message for an undeclared queue)."""

    def __init__(self, broker: dramatiq.Broker) -> None:
        self.broker = broker
        for queue_name in sorted({job.queue_name for job in JOBS}):
            broker.declare_queue(queue_name)

    def sync_shop(self, shop_id: int, *, full: bool = False) -> None:
        """Sync a shop's data: the changes since the last sync, or everything when `full`."""
        self._send(SYNC_SHOP, shop_id, full)

    def reconcile_shop(self, shop_id: int) -> None:
        """Compare a shop's counts with its platform's and repair drift (plugin.sync.reconcile)."""
        self._send(RECONCILE_SHOP, shop_id)

    def scenario_tick(self, shop_id: int) -> None:
        """Run a shop's scenarios once and hand the messages it writes to delivery."""
        self._send(SCENARIO_TICK, shop_id)

    def deliver(self, messages: Iterable[tuple[int, datetime]], now: datetime) -> None:
        """Hand messages due soon to delivery in batches, each delayed until due.

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
                self._send(DELIVER_MESSAGES, ids[start:start + DELIVERY_BATCH], delay_ms=delay_ms or None)

    def redeliver(self, message_ids: list[int]) -> None:
        """Hand a dead worker's claims over again at once, ahead of whatever the delivery queue holds."""
        for start in range(0, len(message_ids), DELIVERY_BATCH):
            self._send(REDELIVER_MESSAGES, message_ids[start:start + DELIVERY_BATCH])

    def sweep_outbox(self) -> None:
        """Hand over what fell due or whose hand-off was lost, and attribute new orders."""
        self._send(SWEEP_OUTBOX)

    def train_recommender(self, shop_id: int) -> None:
        """Retrain a shop's recommendations from its orders."""
        self._send(TRAIN_RECOMMENDER, shop_id)

    def apply_hook(self, delivery_id: int) -> None:
        """Apply one stored platform webhook delivery (plugin.sync.hook_intake stored it)."""
        self._send(APPLY_HOOK, delivery_id)

    def _send(self, job: Job, *args: Any, delay_ms: int | None = None) -> None:
        message: dramatiq.Message[Any] = dramatiq.Message(
            queue_name=job.queue_name, actor_name=job.actor_name, args=args, kwargs={}, options={})
        self.broker.enqueue(message, delay=delay_ms)

"""What each job does, as plain functions of a runtime: the actors call them, and so can tests."""
from __future__ import annotations

from sqlalchemy import select
from sqlmodel import Session, col

from plugin.delivery.batch import deliver_batch
from plugin.engine.tick import tick_written
from plugin.install.lifecycle import revoking_on_401, sync_installed_shop
from plugin.measurement.links import attribute_orders
from plugin.runtime import Runtime
from plugin.storage import outbox
from plugin.storage.models import HookDelivery, MessageEvent
from plugin.sync.hook_apply import apply_delivery
from plugin.sync.hook_intake import unapplied
from plugin.sync.reconcile import reconcile_shop as reconcile
from recommender.serving import train_shop

__all__ = ["sync_shop", "reconcile_shop", "tick_shop", "deliver_messages", "sweep_outbox", "hand_over_queued",
           "train_recommender", "apply_hook"]


def sync_shop(runtime: Runtime, shop_id: int, full: bool = False) -> None:
    """Sync a shop; a first (or full) sync then gives the recommender something to learn from."""
    sync_installed_shop(runtime, shop_id, full=full)  # a 401 revokes the install (plugin.install.lifecycle)
    if full:
        runtime.tasks.train_recommender(shop_id)


def reconcile_shop(runtime: Runtime, shop_id: int) -> None:
    """The daily comparison of a shop's counts with its platform's, repairing drift; a 401 revokes."""
    with revoking_on_401(runtime, shop_id):
        reconcile(runtime, shop_id)


def tick_shop(runtime: Runtime, shop_id: int) -> None:
    """Run a shop's scenarios, hand what they wrote to delivery, then refresh the outbox's statistics."""
    now = runtime.clock.now()
    written = tick_written(runtime, shop_id)
    runtime.tasks.deliver(written.due, now)
    if written.rows >= outbox.ANALYZE_AFTER:
        with runtime.sessions() as session:  # after the hand-off: deliveries need not wait for it
            outbox.analyze_after(session, written.rows)


def deliver_messages(runtime: Runtime, message_ids: list[int]) -> None:
    """Deliver a batch; messages to retry or deferred go back to the broker (or the outbox) for later."""
    outcomes = deliver_batch(runtime, message_ids)
    later = [(message_id, at) for message_id, (_, at) in outcomes.items() if at is not None]
    if later:
        runtime.tasks.deliver(later, runtime.clock.now())


def sweep_outbox(runtime: Runtime) -> None:
    """Hand over what fell due or whose hand-off was lost; attribute orders to clicked messages."""
    now = runtime.clock.now()
    with runtime.sessions() as session:
        expired, lost = outbox.handovers(session, now)
        for shop_id in _shops_with_clicks(session):
            attribute_orders(session, shop_id, now)
    runtime.tasks.redeliver([message_id for message_id, _ in expired])
    runtime.tasks.deliver(lost, now)
    with runtime.sessions() as session:  # webhook deliveries whose job was lost with the queue
        for delivery_id in unapplied(session, now):
            runtime.tasks.apply_hook(delivery_id)


def hand_over_queued(runtime: Runtime) -> int:
    """At the start of a process whose queue is in-process: hand over again every pending row due
    soon; what the last run had queued died with it."""
    now = runtime.clock.now()
    handed = 0
    while True:
        with runtime.sessions() as session:
            rows = outbox.due_within_horizon(session, now)
        if not rows:
            return handed
        runtime.tasks.deliver(rows, now)
        handed += len(rows)


def train_recommender(runtime: Runtime, shop_id: int) -> None:
    """Retrain a shop's recommendations."""
    with runtime.sessions() as session:
        train_shop(session, shop_id, runtime.clock.now())


def _shops_with_clicks(session: Session) -> list[int]:
    """Only shops with click events can have conversions to attribute."""
    return list(session.execute(select(col(MessageEvent.shop_id)).where(col(MessageEvent.kind) == "click").distinct()).scalars())


def apply_hook(runtime: Runtime, delivery_id: int) -> None:
    """Apply one stored platform webhook delivery (a 401 of a re-read revokes the install)."""
    with runtime.sessions() as session:
        shop_id = session.execute(select(col(HookDelivery.shop_id)).where(col(HookDelivery.id) == delivery_id)).scalar()
    if shop_id is None:
        return
    with revoking_on_401(runtime, shop_id):
        apply_delivery(runtime, delivery_id)

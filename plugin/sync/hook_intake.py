"""Platform webhooks: stored once when they arrive, applied by a worker.

The endpoint answers within milliseconds: the descriptor verifies the raw body, the intake writes
one row per (shop, delivery key) — a repeat of a delivery finds the row and changes nothing — and
a Dramatiq job applies it (plugin.sync.hook_apply). A row left unapplied (the queue was lost) is
handed over again by the sweeper, so a delivery the platform saw answered is never dropped.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from connectors.platform import HookReceived, Platform
from plugin.runtime import Runtime
from plugin.storage.models import HookDelivery, Shop
from plugin.storage.upsert import insert_ignore, table_of

__all__ = ["store_delivery", "unapplied", "STALE_AFTER"]

log = logging.getLogger("okaeri.hooks")
STALE_AFTER = timedelta(minutes=5)  # a row still unapplied this long after arrival lost its job


def store_delivery(runtime: Runtime, platform: Platform[Any], hook: HookReceived) -> int | None:
    """Store a verified delivery and hand it to a worker; its row id, or None when it was a repeat
    (or names no shop Okaeri knows — acknowledged, so the platform stops retrying)."""
    now = runtime.clock.now()
    with runtime.sessions() as session:
        shop_id = session.execute(select(col(Shop.id)).where(
            col(Shop.platform) == platform.name, col(Shop.external_id) == hook.account)).scalar_one_or_none()
        if shop_id is None:
            log.info("okaeri.hooks.unknown-shop", extra={"platform": platform.name, "topic": hook.topic})
            return None
        inserted = insert_ignore(session, table_of(HookDelivery), [{
            "shop_id": shop_id, "delivery_key": hook.delivery_key[:128], "topic": hook.topic[:64],
            "body": hook.body.decode("utf-8", "replace"), "triggered_at": hook.triggered_at, "received_at": now,
            "applied_at": None, "outcome": ""}], ["shop_id", "delivery_key"])
        session.commit()
    if not inserted:
        log.info("okaeri.hooks.repeat", extra={"shop_id": shop_id, "topic": hook.topic})
        return None
    runtime.tasks.apply_hook(inserted[0])
    return inserted[0]


def unapplied(session: Session, now: datetime, limit: int = 1000) -> list[int]:
    """Deliveries that arrived more than STALE_AFTER ago and were never applied (their job was lost)."""
    return list(session.execute(select(col(HookDelivery.id)).where(
        col(HookDelivery.applied_at).is_(None), col(HookDelivery.received_at) < now - STALE_AFTER)
        .order_by(col(HookDelivery.received_at)).limit(limit)).scalars())

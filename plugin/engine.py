"""The scenario engine: for one shop, run each enabled preset in priority order through the
gates and write the outbox. Rendering happens at delivery, with stock as it is then."""
from __future__ import annotations

import json
import logging
import os
import socket
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlmodel import Session

from plugin import outbox
from plugin.gates import CAP_WINDOW, gated_audience, idempotency_key, in_holdout, next_allowed
from plugin.models import InstallState, MessageStatus, ScenarioSetting, Shop
from scenarios import Scenario, by_priority

if TYPE_CHECKING:
    from plugin.runtime import Runtime

__all__ = ["run_shop_tick", "write_scenario"]

log = logging.getLogger("okaeri.engine")
TICK_LEASE = timedelta(minutes=10)


def run_shop_tick(runtime: Runtime, shop_id: int) -> list[tuple[int, datetime]]:
    """All enabled presets of one shop; returns (message id, due time) of new pending messages.

    Two overlapping ticks of one shop are serialised by a lease, so the frequency cap holds.
    """
    from plugin.scheduler import acquire_lease, release_lease

    holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    lease = f"tick:{shop_id}"
    if not acquire_lease(runtime, lease, holder, TICK_LEASE):
        log.info("okaeri.engine.tick-busy", extra={"shop_id": shop_id})
        return []
    try:
        now = runtime.clock.now()
        written: list[tuple[int, datetime]] = []
        with runtime.sessions() as session:
            shop = session.get(Shop, shop_id)
            if shop is None or shop.state != InstallState.active:
                return []
            enabled = {s.scenario_key: s for s in session.execute(select(ScenarioSetting).where(
                ScenarioSetting.shop_id == shop_id, ScenarioSetting.enabled.is_(True))).scalars()}  # type: ignore[attr-defined]
            for scenario in by_priority():
                if scenario.key in enabled:
                    written += write_scenario(session, shop, scenario, enabled[scenario.key], now)
        return written
    finally:
        release_lease(runtime, lease, holder)


def write_scenario(session: Session, shop: Shop, scenario: Scenario, setting: ScenarioSetting,
                   now: datetime) -> list[tuple[int, datetime]]:
    """Select, gate and write one preset's messages for one shop (one SQL statement to select)."""
    delay = timedelta(minutes=setting.delay_minutes) if setting.delay_minutes is not None else scenario.default_delay
    audience = scenario.audience(shop, now, delay).subquery()
    rows: list[dict[str, Any]] = []
    seen: dict[int, datetime] = {}
    for customer_id, trigger_key, ref_id, email, blocking_at in session.execute(
            gated_audience(shop, scenario.key, audience, now)):
        blocking = max(filter(None, [_aware(blocking_at), seen.get(customer_id)]), default=None)
        row = _row(shop, scenario, setting, customer_id, trigger_key, ref_id, email, blocking, now)
        seen[customer_id] = max(row["scheduled_at"], seen.get(customer_id, row["scheduled_at"]))
        rows.append(row)
    ids = outbox.write(session, rows)
    session.commit()
    pending = session.execute(select(outbox.Message.id, outbox.Message.scheduled_at).where(
        outbox.Message.id.in_(ids), outbox.Message.status == MessageStatus.pending)).all() if ids else []  # type: ignore[union-attr]
    log.info("okaeri.engine.written", extra={"shop_id": shop.id, "scenario": scenario.key, "count": len(ids)})
    return [(i, at) for i, at in pending]


def _aware(moment: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes from aggregate subqueries; they are UTC."""
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment


def _row(shop: Shop, scenario: Scenario, setting: ScenarioSetting, customer_id: int, trigger_key: str,
         ref_id: int | None, email: str, blocking: datetime | None, now: datetime) -> dict[str, Any]:
    decision = ["consent: opted in, not suppressed"]
    status, at = MessageStatus.pending, now
    if blocking is not None:
        at = blocking + CAP_WINDOW
        decision.append(f"cap: deferred to {at.isoformat()} (a message at {blocking.isoformat()} came first)")
    else:
        decision.append("cap: ok")
    allowed = next_allowed(at, shop.timezone)
    decision.append("quiet hours: ok" if allowed == at else f"quiet hours: deferred to {allowed.isoformat()}")
    at = allowed
    if in_holdout(shop.id, scenario.key, customer_id, setting.holdout_percent):
        status = MessageStatus.control
        decision.append(f"holdout: control group ({setting.holdout_percent}%), not sent")
    else:
        decision.append("holdout: treatment")
    return {
        "shop_id": shop.id, "customer_id": customer_id, "scenario_key": scenario.key, "trigger_key": trigger_key,
        "idempotency_key": idempotency_key(shop.id, scenario.key, customer_id, trigger_key),
        "channel": "email", "to_address": email, "subject": "", "body_text": "", "body_html": "",
        "rfc_message_id": f"<{uuid.uuid4().hex}@okaeri>", "status": status, "scheduled_at": at,
        "attempts": 0, "last_error": "", "created_at": now, "enqueued_at": now,
        "context": json.dumps({"ref_id": ref_id}), "decision": "; ".join(decision),
    }

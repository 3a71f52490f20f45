"""The scenario engine: select, gate, render, write to the outbox — for one shop per tick."""
from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlmodel import Session

from plugin import outbox
from plugin.delivery import unsubscribe_url
from plugin.gates import apply_gates, idempotency_key
from plugin.models import InstallState, ScenarioSetting, Shop
from plugin.rendering import render_message
from scenarios import SCENARIOS, Candidate, Scenario

if TYPE_CHECKING:
    from plugin.runtime import Runtime

__all__ = ["run_shop_tick", "shop_variables"]

log = logging.getLogger("okaeri.engine")


def shop_variables(shop: Shop) -> dict[str, Any]:
    """What templates know of the sender (特定電子メール法: name, address, contact)."""
    return {"name": shop.name, "address": shop.sender_address, "email": shop.owner_email,
            "url": shop.domain, "currency": shop.currency}


def run_shop_tick(runtime: Runtime, shop_id: int) -> list[tuple[int, datetime]]:
    """Run every enabled scenario of one shop; return (message id, due time) of new messages."""
    now = runtime.clock.now()
    written: list[tuple[int, datetime]] = []
    with runtime.sessions() as session:
        shop = session.get(Shop, shop_id)
        if shop is None or shop.state != InstallState.active:
            return []
        settings = session.execute(
            select(ScenarioSetting).where(ScenarioSetting.shop_id == shop_id, ScenarioSetting.enabled.is_(True))  # type: ignore[attr-defined]
        ).scalars().all()
        for setting in settings:
            scenario = SCENARIOS.get(setting.scenario_key)
            if scenario is not None:
                written += _run_scenario(runtime, session, shop, scenario, setting, now)
    return written


def _run_scenario(
    runtime: Runtime, session: Session, shop: Shop, scenario: Scenario, setting: ScenarioSetting, now: datetime
) -> list[tuple[int, datetime]]:
    delay = timedelta(minutes=setting.delay_minutes) if setting.delay_minutes is not None else scenario.default_delay
    candidates = apply_gates(session, shop, scenario, scenario.select(session, shop, now, delay), now)
    if not candidates:
        return []
    contexts = scenario.contexts(session, shop, candidates)
    rows = [_row(runtime, shop, scenario, c, contexts[c.trigger_key], now) for c in candidates]
    ids = outbox.write(session, rows)
    session.commit()
    log.info("okaeri.engine.written", extra={"shop_id": shop.id, "scenario": scenario.key, "count": len(ids)})
    return [(i, now) for i in ids]


def _row(runtime: Runtime, shop: Shop, scenario: Scenario, candidate: Candidate,
         context: dict[str, Any], now: datetime) -> dict[str, Any]:
    rfc_id = f"<{uuid.uuid4().hex}@okaeri>"
    variables = {
        **context,
        "shop": shop_variables(shop),
        "customer": {"name": candidate.name},
        "unsubscribe_url": unsubscribe_url(runtime, shop.id or 0, candidate.customer_id, rfc_id),
    }
    subject, text, html = render_message(scenario.key, shop.locale, variables)
    return {
        "shop_id": shop.id, "customer_id": candidate.customer_id, "scenario_key": scenario.key,
        "trigger_key": candidate.trigger_key,
        "idempotency_key": idempotency_key(shop.id, scenario.key, candidate),
        "channel": "email", "to_address": candidate.email, "subject": subject, "body_text": text,
        "body_html": html, "rfc_message_id": rfc_id, "status": "pending", "scheduled_at": now,
        "attempts": 0, "last_error": "", "created_at": now, "enqueued_at": now,
    }

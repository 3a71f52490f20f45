"""The one switch: turn the standard scenarios on (with defaults) or off (cancelling sends)."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlmodel import Session

from plugin.models import Message, MessageStatus, ScenarioSetting, Shop
from plugin.upsert import upsert
from scenarios import SCENARIOS

__all__ = ["set_standard_scenarios", "scenario_overview"]


def set_standard_scenarios(session: Session, shop: Shop, enabled: bool, now: datetime) -> list[str]:
    """Switch every preset; turning off cancels their pending messages at once. Returns keys."""
    rows = [{"shop_id": shop.id, "scenario_key": key, "enabled": enabled, "channel": "email",
             "updated_at": now} for key in SCENARIOS]
    upsert(session, ScenarioSetting.__table__, rows, ["shop_id", "scenario_key"], ["enabled", "updated_at"])  # type: ignore[arg-type]
    if not enabled:
        session.execute(
            update(Message)
            .where(Message.shop_id == shop.id, Message.status == MessageStatus.pending,  # type: ignore[arg-type]
                   Message.scenario_key.in_(list(SCENARIOS)))  # type: ignore[attr-defined]
            .values(status=MessageStatus.cancelled, last_error="scenario switched off")
        )
    return list(SCENARIOS)


def scenario_overview(session: Session, shop: Shop, lang: str) -> list[dict[str, Any]]:
    """Each preset's switch and message counts by status, for the settings page."""
    enabled = dict(session.execute(select(ScenarioSetting.scenario_key, ScenarioSetting.enabled)
                                   .where(ScenarioSetting.shop_id == shop.id)).all())
    counts: dict[str, dict[str, int]] = {}
    for key, status, n in session.execute(
        select(Message.scenario_key, Message.status, func.count())
        .where(Message.shop_id == shop.id).group_by(Message.scenario_key, Message.status)
    ):
        counts.setdefault(key, {})[str(status)] = n
    return [
        {"key": key, "name": s.name_ja if lang == "ja" else s.name_en, "enabled": bool(enabled.get(key)),
         "counts": {st: counts.get(key, {}).get(st, 0) for st in ("sent", "pending", "cancelled", "failed")}}
        for key, s in SCENARIOS.items()
    ]

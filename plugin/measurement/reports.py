"""What each scenario did and earned: per scenario and per week, with the holdout's lift."""
from __future__ import annotations

import math
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session, col

from plugin.clock import as_utc
from plugin.measurement.links import ATTRIBUTION_WINDOW
from plugin.storage.models import Conversion, Message, MessageEvent, MessageStatus, Order, Shop
from scenarios import SCENARIOS
from scenarios.sql import local_week

__all__ = ["scenario_report", "lift"]

Z95 = 1.96


def lift(treated: int, treated_conv: int, control: int, control_conv: int) -> dict[str, float | None]:
    """Incremental conversion rate (treated − control) with a 95 % normal-approximation interval."""
    if not treated or not control:
        return {"treated_rate": None, "control_rate": None, "lift": None, "ci_low": None, "ci_high": None}
    p1, p2 = treated_conv / treated, control_conv / control
    se = math.sqrt(p1 * (1 - p1) / treated + p2 * (1 - p2) / control)
    return {"treated_rate": p1, "control_rate": p2, "lift": p1 - p2, "ci_low": p1 - p2 - Z95 * se,
            "ci_high": p1 - p2 + Z95 * se}


def scenario_report(session: Session, shop: Shop, now: datetime, weeks: int = 8) -> dict[str, Any]:
    """Per scenario and week: sent, held back by reason, opens, clicks, conversions, revenue, lift."""
    since = now - timedelta(weeks=weeks)
    messages = session.execute(select(
        col(Message.id), col(Message.scenario_key), col(Message.status), col(Message.customer_id),
        col(Message.created_at), col(Message.sent_at), col(Message.scheduled_at), col(Message.last_error),
    ).where(col(Message.shop_id) == shop.id, col(Message.created_at) > since)).all()
    kinds: defaultdict[int, set[str]] = defaultdict(set)
    for message_id, kind in session.execute(select(col(MessageEvent.message_id), col(MessageEvent.kind)).where(
            col(MessageEvent.shop_id) == shop.id).distinct()):
        kinds[message_id].add(kind)
    conversions = {mid: (n, revenue) for mid, n, revenue in session.execute(
        select(col(Conversion.message_id), func.count(), func.sum(Conversion.revenue))
        .where(col(Conversion.shop_id) == shop.id).group_by(col(Conversion.message_id)))}
    orders: defaultdict[int | None, list[tuple[datetime, int]]] = defaultdict(list)
    for customer_id, ordered_at, total in session.execute(
            select(col(Order.customer_id), col(Order.ordered_at), col(Order.total)).where(
            col(Order.shop_id) == shop.id, col(Order.ordered_at) > since, col(Order.canceled).is_(False))):
        orders[customer_id].append((as_utc(ordered_at), total))
    table: dict[str, dict[str, dict[str, Any]]] = defaultdict(lambda: defaultdict(_empty))
    arms: dict[str, dict[str, list[int]]] = defaultdict(lambda: {"treated": [0, 0, 0], "control": [0, 0, 0]})
    for mid, key, status, customer_id, created, sent_at, scheduled, error in messages:
        row = table[key][local_week(as_utc(created), shop.timezone)]
        if status == MessageStatus.sent:
            row["sent"] += 1
            row["opens"] += "open" in kinds[mid]
            row["clicks"] += "click" in kinds[mid]
            n, revenue = conversions.get(mid, (0, 0))
            row["conversions"] += n
            row["revenue"] += int(revenue or 0)
        elif status in (MessageStatus.cancelled, MessageStatus.failed, MessageStatus.control):
            reason = "control" if status == MessageStatus.control else (error or str(status)).split(":")[0]
            row["held_back"][reason] = row["held_back"].get(reason, 0) + 1
        if status in (MessageStatus.sent, MessageStatus.control):
            start = as_utc(sent_at or scheduled)
            bought = [t for at, t in orders.get(customer_id, []) if start < at <= start + ATTRIBUTION_WINDOW]
            arm = arms[key]["treated" if status == MessageStatus.sent else "control"]
            arm[0], arm[1], arm[2] = arm[0] + 1, arm[1] + bool(bought), arm[2] + sum(bought)
    return {"shop": shop.name, "currency": shop.currency, "weeks": weeks, "scenarios": [
        {"key": key, "name": {"ja": s.name_ja, "en": s.name_en},
         "weeks": [{"week": w, **v} for w, v in sorted(table.get(key, {}).items())],
         "lift": {**lift(arms[key]["treated"][0], arms[key]["treated"][1], arms[key]["control"][0],
                         arms[key]["control"][1]),
                  "treated": arms[key]["treated"][0], "control": arms[key]["control"][0],
                  "revenue_per_treated": arms[key]["treated"][2] / arms[key]["treated"][0] if arms[key]["treated"][0] else None,
                  "revenue_per_control": arms[key]["control"][2] / arms[key]["control"][0] if arms[key]["control"][0] else None}}
        for key, s in SCENARIOS.items()]}


def _empty() -> dict[str, Any]:
    return {"sent": 0, "held_back": {}, "opens": 0, "clicks": 0, "conversions": 0, "revenue": 0}

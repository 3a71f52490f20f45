"""The cross-channel follow-up: a scenario message on its own channel (mail) that was not opened
(nor clicked) within the shop rule's `follow_up_hours` (48 h) goes once more, the same message, on
the first preferred channel that reaches the customer (LINE), never before those hours have passed.

The follow-up is a message of its own: the same scenario and trigger columns (so its content and
exit condition are the original's), a trigger key of the original's plus FOLLOW_UP (so there is at
most one per original, ever), and the same gates — consent on its channel, the cap counting both
channels, quiet hours — except idempotency's probe, which would find the original.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, literal, select
from sqlmodel import col

from plugin.gates.base import Tick
from plugin.gates.decisions import channel_chosen, follow_up_token
from plugin.gates.pipeline import PIPELINE, ranked_audience
from plugin.gates.rules import ShopRules
from plugin.storage.models import ChannelRule, Customer, Message, MessageEvent, MessageStatus, Shop
from plugin.storage.upsert import table_of

__all__ = ["FOLLOW_UP", "LOOK_BACK", "follow_up_audience", "follow_up_steps"]

FOLLOW_UP = ">followup"  # appended to the original's trigger key
LOOK_BACK = timedelta(days=7)  # originals older than hours + this are left alone (a tick missed for a week)


def follow_up_audience(shop: Shop, scenario_key: str, channel: str, hours: int, now: datetime) -> Any:
    """Sent messages of this scenario on `channel`, `hours` old or more, never opened or clicked,
    not follow-ups themselves: customer, trigger columns and the follow-up's trigger key."""
    original = table_of(Message).alias("original")
    sent_before = now - timedelta(hours=hours)
    seen = exists().where(col(MessageEvent.message_id) == original.c.id, col(MessageEvent.kind).in_(("open", "click")))
    c = original.c
    return select(c.customer_id.label("customer_id"), c.trigger_kind.label("trigger_kind"),
                  c.trigger_ref.label("trigger_ref"), c.trigger_step.label("trigger_step"),
                  (c.trigger_key + literal(FOLLOW_UP)).label("follow_up_key")).where(
        c.shop_id == shop.id, c.scenario_key == scenario_key, c.channel == channel,
        c.status == MessageStatus.sent.value, c.sent_at <= sent_before,
        c.sent_at > sent_before - LOOK_BACK, ~c.trigger_key.like(f"%{FOLLOW_UP}"), ~seen)


def _gated(tick: Tick, audience: Any) -> Any:
    conditions = [c for gate in PIPELINE if gate.name != "idempotency" for c in gate.where(tick, audience)]
    inputs = {name: column for gate in PIPELINE for name, column in gate.inputs(tick, audience).items()}
    written = exists().where(col(Message.shop_id) == tick.shop.id, col(Message.customer_id) == audience.c.customer_id,
                             col(Message.scenario_key) == tick.scenario_key,
                             col(Message.trigger_key) == audience.c.follow_up_key)
    return (select(*audience.c, audience.c.follow_up_key.label("trigger_key"), tick.channel.address().label("to_address"),
                   *(column.label(name) for name, column in inputs.items()))
            .join(Customer, and_(col(Customer.id) == audience.c.customer_id, col(Customer.shop_id) == tick.shop.id))
            .where(*conditions, ~written).order_by(audience.c.customer_id, audience.c.follow_up_key))


def follow_up_steps(shop: Shop, steps: list[Any], rule: ChannelRule, now: datetime) -> list[tuple[Tick, Any, Any]]:
    """(tick, ranked audience, decision token) of each enabled scenario's follow-up pass, if the
    shop's channel rule (`plugin.channels.choice.rule_of`) wants them."""
    if not rule.follow_up:
        return []
    passes = []
    for step in steps:
        target = next((c for c in step.preferred if not c.idle_reason), None)
        if target is None:
            continue
        audience = follow_up_audience(shop, step.scenario.key, step.channel.name, rule.follow_up_hours, now).subquery()
        tick = Tick(shop=shop, scenario_key=step.scenario.key, channel=target, rules=ShopRules.of(shop), now=now,
                    holdout_percent=0, one_per_customer=False)  # the original was sent: its customer is in treatment
        token = literal(f"{follow_up_token(step.channel.name, rule.follow_up_hours)};{channel_chosen(target.name)}")
        passes.append((tick, ranked_audience(_gated(tick, audience).subquery()), token))
    return passes

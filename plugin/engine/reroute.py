"""A customer a channel stopped reaching (they blocked it), or a channel that reaches nobody for a
while (an account paused): the messages still waiting on it go by their scenario's own channel
instead, when that channel reaches the customer, with the reason recorded."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, exists, select
from sqlmodel import Session, col

from plugin.channels.base import Channel
from plugin.clock import as_utc
from plugin.gates.decisions import channel_chosen
from plugin.storage.models import Customer, Message, MessageStatus, ScenarioSetting, Suppression
from scenarios import get_scenario

__all__ = ["reroute_waiting", "reroute_idle"]


def reroute_waiting(session: Session, channels: dict[str, Channel], shop_id: int, customer_id: int, channel: str,
                    why: str) -> int:
    """Move the customer's pending messages on `channel` to each scenario's own channel; how many moved."""
    waiting = session.execute(select(Message).where(
        col(Message.shop_id) == shop_id, col(Message.customer_id) == customer_id, col(Message.channel) == channel,
        col(Message.status) == MessageStatus.pending)).scalars().all()
    moved = sum(_move(session, channels, message, why) for message in waiting)
    session.commit()
    return moved


def reroute_idle(session: Session, channels: dict[str, Channel], shop_id: int, scenario_key: str, channel: str,
                 why: str, now: datetime) -> int:
    """A channel that reaches nobody for this scenario now (an account paused until its quota renews):
    the scenario's messages waiting on it go by its own channel, due now; how many moved."""
    waiting = session.execute(select(Message).where(
        col(Message.shop_id) == shop_id, col(Message.scenario_key) == scenario_key, col(Message.channel) == channel,
        col(Message.status) == MessageStatus.pending)).scalars().all()
    moved = 0
    for message in waiting:
        if _move(session, channels, message, why):
            message.scheduled_at, message.enqueued_at = min(as_utc(message.scheduled_at), now), None  # the sweeper hands it over
            moved += 1
    session.commit()
    return moved


def _move(session: Session, channels: dict[str, Channel], message: Message, why: str) -> bool:
    """Onto its scenario's own channel, when that one reaches the customer; False when it stays."""
    setting = session.execute(select(ScenarioSetting).where(
        col(ScenarioSetting.shop_id) == message.shop_id,
        col(ScenarioSetting.scenario_key) == message.scenario_key)).scalar_one_or_none()
    own = setting.channel if setting is not None else get_scenario(message.scenario_key).channels[0]
    target = channels.get(own)
    if own == message.channel or target is None:
        return False
    address = _reachable_address(session, target, message.shop_id, message.customer_id)
    if address is None:
        return False
    was = message.channel
    message.channel, message.to_address = own, address
    message.decision = f"{message.decision};{channel_chosen(own)}@{was}:{why}"[:1000]
    session.add(message)
    return True


def _reachable_address(session: Session, target: Channel, shop_id: int, customer_id: int) -> str | None:
    suppressed = exists().where(col(Suppression.shop_id) == shop_id, col(Suppression.channel) == target.name,
                                col(Suppression.address) == target.address())
    return session.execute(select(target.address()).where(and_(
        col(Customer.id) == customer_id, col(Customer.shop_id) == shop_id, col(Customer.deleted_at).is_(None),
        target.consented(), ~suppressed))).scalar()

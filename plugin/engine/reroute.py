"""A customer a channel stopped reaching (they blocked it): their messages still waiting on it go
by their scenario's own channel instead, when that channel reaches them, with the reason recorded."""
from __future__ import annotations

from sqlalchemy import and_, exists, select
from sqlmodel import Session, col

from plugin.channels.base import Channel
from plugin.gates.decisions import channel_chosen
from plugin.storage.models import Customer, Message, MessageStatus, ScenarioSetting, Suppression
from scenarios import get_scenario

__all__ = ["reroute_waiting"]


def reroute_waiting(session: Session, channels: dict[str, Channel], shop_id: int, customer_id: int, channel: str,
                    why: str) -> int:
    """Move the customer's pending messages on `channel` to each scenario's own channel; how many moved."""
    waiting = session.execute(select(Message).where(
        col(Message.shop_id) == shop_id, col(Message.customer_id) == customer_id, col(Message.channel) == channel,
        col(Message.status) == MessageStatus.pending)).scalars().all()
    moved = 0
    for message in waiting:
        setting = session.execute(select(ScenarioSetting).where(
            col(ScenarioSetting.shop_id) == shop_id, col(ScenarioSetting.scenario_key) == message.scenario_key)).scalar_one_or_none()
        own = setting.channel if setting is not None else get_scenario(message.scenario_key).channels[0]
        target = channels.get(own)
        if own == channel or target is None:
            continue
        address = _reachable_address(session, target, shop_id, customer_id)
        if address is None:
            continue
        message.channel, message.to_address = own, address
        message.decision = f"{message.decision};{channel_chosen(own)}@{channel}:{why}"[:1000]
        session.add(message)
        moved += 1
    session.commit()
    return moved


def _reachable_address(session: Session, target: Channel, shop_id: int, customer_id: int) -> str | None:
    suppressed = exists().where(col(Suppression.shop_id) == shop_id, col(Suppression.channel) == target.name,
                                col(Suppression.address) == target.address())
    return session.execute(select(target.address()).where(and_(
        col(Customer.id) == customer_id, col(Customer.shop_id) == shop_id, col(Customer.deleted_at).is_(None),
        target.consented(), ~suppressed))).scalar()

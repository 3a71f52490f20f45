"""Which channel reaches each customer: a shop's rule, applied by the tick in SQL.

The rule lists channels tried before a scenario's own (its setting's channel), in order; a
customer goes by the first that reaches them (linked, following, consented, not suppressed), and
by the scenario's own channel otherwise. With no rule of its own a shop tries the registry's
preferred channels: "LINE if linked and following, otherwise email" with today's registry. The
rule also holds the follow-up of a message not opened within `follow_up_hours` (plugin.engine.followup).
"""
from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from plugin.channels.base import Channel
from plugin.storage.models import ChannelRule

__all__ = ["rule_of", "preferred_channels", "save_rule", "DEFAULT_FOLLOW_UP_HOURS"]

DEFAULT_FOLLOW_UP_HOURS = 48


def rule_of(session: Session, shop_id: int, channels: dict[str, Channel]) -> ChannelRule:
    """The shop's rule, or the default one (not stored)."""
    rule = session.get(ChannelRule, shop_id)
    if rule is not None:
        return rule
    preferred = ",".join(name for name, channel in channels.items() if channel.preferred)
    return ChannelRule(shop_id=shop_id, preferred=preferred, follow_up=True, follow_up_hours=DEFAULT_FOLLOW_UP_HOURS,
                       updated_at=datetime.min)


def preferred_channels(rule: ChannelRule, channels: dict[str, Channel]) -> list[Channel]:
    """The rule's channels this process provides, in the rule's order."""
    return [channels[name] for name in rule.preferred.split(",") if name in channels]


def save_rule(session: Session, shop_id: int, preferred: list[str], follow_up: bool, now: datetime,
              follow_up_hours: int = DEFAULT_FOLLOW_UP_HOURS) -> ChannelRule:
    rule = session.get(ChannelRule, shop_id) or ChannelRule(shop_id=shop_id, updated_at=now)
    rule.preferred, rule.follow_up, rule.follow_up_hours, rule.updated_at = ",".join(preferred), follow_up, follow_up_hours, now
    session.add(rule)
    session.commit()
    return rule

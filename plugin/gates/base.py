"""The gate interface: one rule with its SQL in a tick, its re-check at delivery, its tokens.

A gate overrides only the hooks it needs (the shape of Dramatiq's middleware); the pipeline
(plugin.gates.pipeline) calls them in one fixed order. At a tick:

    where(tick, candidates)     conditions a candidate must meet to become a message at all
    inputs(tick, candidates)    extra columns later hooks read (e.g. the cap's `blocking_at`)
    defer(tick, ranked)         a Deferral: when the row waits, until when, with which token
    hold(tick, ranked)          a Hold: rows written but never sent (the holdout's control group)

At delivery, over one claimed batch:

    prepare(batch)              load what `recheck` needs for the whole batch, in a few queries
    recheck(batch, message)     Cancel or Defer this message now, or None to let it pass
    land(batch, shop, at)       move a deferral's time to a minute this gate allows
    passed(batch, message)      a message passed every gate: remember it (one per customer per batch)
    content(message, context)   after the scenario loaded its content: Cancel when it is unusable
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement
from sqlalchemy.sql import Subquery
from sqlmodel import Session

from plugin.channels.base import Channel
from plugin.gates.rules import ShopRules
from plugin.storage.models import Customer, Message, Shop

__all__ = ["Gate", "Tick", "Deferral", "Hold", "Batch", "Cancel", "Defer", "Verdict"]


@dataclass(frozen=True)
class Tick:
    """One preset's pass over one shop: what every gate's SQL is built from."""

    shop: Shop
    scenario_key: str
    channel: Channel
    rules: ShopRules
    now: datetime
    holdout_percent: int
    one_per_customer: bool  # the audience holds at most one trigger per customer


@dataclass(frozen=True)
class Deferral:
    """Rows matching a branch's condition wait until that branch's time; `otherwise`, when set,
    is where every other row waits (a Python time: the same for the whole pass)."""

    deferred: str  # decision token when this gate deferred the row
    ok: str  # decision token when it did not
    branches: tuple[tuple[ColumnElement[bool], ColumnElement[Any]], ...] = ()
    otherwise: datetime | None = None


@dataclass(frozen=True)
class Hold:
    """Rows matching `when` are written with `status` and never handed to a channel."""

    when: ColumnElement[bool]
    status: str
    held: str  # decision token for held rows
    released: str  # decision token for the others


@dataclass(frozen=True)
class Cancel:
    reason: str


@dataclass(frozen=True)
class Defer:
    at: datetime


Verdict = Cancel | Defer


@dataclass
class Batch:
    """A claimed batch at delivery, and what the gates loaded for it."""

    session: Session
    now: datetime
    messages: list[Message]
    shops: dict[int, Shop | None]
    customers: dict[int, Customer]
    channels: dict[str, Channel]
    state: dict[str, Any] = field(default_factory=dict)

    def rules(self, shop_id: int) -> ShopRules:
        return ShopRules.of(self.shops.get(shop_id))


class Gate:
    """A rule every scenario message passes. Subclasses set `name` and override their hooks."""

    name: str = ""

    def where(self, tick: Tick, candidates: Subquery) -> list[ColumnElement[bool]]:
        return []

    def inputs(self, tick: Tick, candidates: Subquery) -> dict[str, ColumnElement[Any]]:
        return {}

    def defer(self, tick: Tick, ranked: Subquery) -> Deferral | None:
        return None

    def hold(self, tick: Tick, ranked: Subquery) -> Hold | None:
        return None

    def prepare(self, batch: Batch) -> None:
        return None

    def recheck(self, batch: Batch, message: Message) -> Verdict | None:
        return None

    def land(self, batch: Batch, shop_id: int, at: datetime) -> datetime:
        return at

    def passed(self, batch: Batch, message: Message) -> None:
        return None

    def content(self, message: Message, context: dict[str, Any], needs_items: bool) -> Cancel | None:
        return None

"""The guards every scenario passes before anything reaches the outbox, in this order:

1. consent and suppression — only customers who opted in to email; the suppression list wins
   (filtered in SQL: such customers never become messages);
2. idempotency — one message per (shop, scenario, customer, trigger), ever (SQL NOT EXISTS,
   and the unique index on those four columns if two ticks race);
3. frequency cap — at most one scenario message per customer per 24 h; scenarios run in
   priority order, so the higher priority goes first and a capped one is deferred until the
   window has passed (re-checked at delivery), not dropped;
4. quiet hours — nothing lands between 21:00 and 08:00 shop time: deferred, not dropped;
5. holdout — a deterministic share per scenario is recorded as `control` and never sent;
6. stock — promoted items are re-read at delivery; sold-out ones are dropped, and a message
   left with none is cancelled.
Every written row carries `decision`: what each gate said, so "why (not)" has an answer
(tokens, read back as Japanese or English sentences by `plugin.gates.decisions.explain`).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, and_, exists, func, select
from sqlalchemy.sql import Subquery

from plugin.storage.models import Customer, Message, MessageStatus, Shop, Suppression, trigger_key_sql

__all__ = ["gated_audience", "next_allowed", "Partition", "CAP_WINDOW", "QUIET"]

CAP_WINDOW = timedelta(hours=24)
QUIET = (time(21, 0), time(8, 0))  # 21:00 – 08:00 shop time
LIVE = (MessageStatus.pending, MessageStatus.sending, MessageStatus.sent)


@dataclass(frozen=True)
class Partition:
    """A range of a shop's customer ids, low ≤ id < high (None: unbounded): one share of a tick.

    Ranges rather than `id % n`: the planner's statistics on the id column estimate a range
    well, while a modulo looks like 0.5 % of the rows and led it to a plan 17× slower.
    """

    low: int | None = None
    high: int | None = None

    def where(self, customer_id: Any) -> list[Any]:
        """The filter for this share: none when it is the whole range."""
        return ([] if self.low is None else [customer_id >= self.low]) + \
            ([] if self.high is None else [customer_id < self.high])


def gated_audience(shop: Shop, scenario_key: str, audience: Subquery, now: datetime, *,
                   one_per_customer: bool = False, partition: Partition | None = None) -> Select[Any]:
    """Wrap a preset's audience with gates 1–2 in SQL; gate 3's input (the latest live message
    of the customer within the cap window) comes back as the column `blocking_at`.

    `one_per_customer`: the audience holds at most one trigger per customer (a periodic preset's
    pass over its period). Then a trigger written before cannot push a new one of the same
    customer behind it, and the unique idempotency key alone rejects the re-write, so the
    NOT EXISTS probe (one index lookup per candidate) is left out.
    `partition`: only that share of the customers (the filter is on the audience's column, so
    the database can push it into the preset's own query).
    """
    suppressed = exists().where(Suppression.shop_id == shop.id, Suppression.channel == "email",
                                Suppression.address == Customer.email)
    # Both probes go through the unique (shop, customer, scenario, trigger) index.
    trigger_key = trigger_key_sql(audience.c.trigger_kind, audience.c.trigger_ref, audience.c.trigger_step)
    written = exists().where(Message.shop_id == shop.id, Message.customer_id == audience.c.customer_id,
                             Message.scenario_key == scenario_key, Message.trigger_key == trigger_key)
    blocking = (select(func.max(Message.scheduled_at)).where(
        Message.shop_id == shop.id, Message.customer_id == audience.c.customer_id,
        Message.status.in_(LIVE), Message.scheduled_at > now - CAP_WINDOW)  # type: ignore[attr-defined,operator]
        .scalar_subquery())
    return (select(audience.c.customer_id, trigger_key.label("trigger_key"), audience.c.trigger_kind,
                   audience.c.trigger_ref, audience.c.trigger_step, Customer.email,
                   blocking.label("blocking_at"))
            .join(Customer, and_(Customer.id == audience.c.customer_id, Customer.shop_id == shop.id))
            .where(Customer.email_consent.is_(True), Customer.email != "", ~suppressed,  # type: ignore[attr-defined]
                   *([] if one_per_customer else [~written]), *(partition or Partition()).where(audience.c.customer_id))
            .order_by(audience.c.customer_id, trigger_key))


def next_allowed(moment: datetime, timezone: str) -> datetime:
    """`moment`, or the next 08:00 in the shop's time zone if it falls in quiet hours."""
    zone = ZoneInfo(timezone)
    local = moment.astimezone(zone)
    start, end = QUIET
    if end <= local.time() < start:
        return moment
    day = local.date() if local.time() < end else local.date() + timedelta(days=1)
    return datetime.combine(day, end, tzinfo=zone).astimezone(moment.tzinfo)

"""Gate 3, the frequency cap: at most `cap_count` scenario messages per customer within
`cap_window` (default one per 24 h), across scenarios and channels. Presets run in priority
order, so the higher priority writes first; a capped message is deferred until the window has
passed, not dropped, and re-checked at delivery against what was really sent."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, literal, select
from sqlalchemy.sql import Subquery
from sqlmodel import col

from plugin.clock import as_utc
from plugin.gates.base import Batch, Defer, Deferral, Gate, Tick, Verdict
from plugin.gates.decisions import CAP_OK, cap_deferred
from plugin.gates.sql import plus_hours
from plugin.storage.models import Message, MessageStatus
from plugin.storage.upsert import table_of

__all__ = ["FrequencyCap", "LIVE"]

LIVE = (MessageStatus.pending, MessageStatus.sending, MessageStatus.sent)


class FrequencyCap(Gate):
    name = "cap"

    def inputs(self, tick: Tick, candidates: Subquery) -> dict[str, ColumnElement[Any]]:
        """`blocking_at`: when the customer's window is full, the live message that fills it
        (the latest for a cap of one); `live_count` for caps above one."""
        rules = tick.rules
        live = (col(Message.shop_id) == tick.shop.id, col(Message.customer_id) == candidates.c.customer_id,
                col(Message.status).in_(LIVE), col(Message.scheduled_at) > tick.now - rules.cap_window)
        if rules.cap_count == 1:
            return {"blocking_at": select(func.max(Message.scheduled_at)).where(*live).scalar_subquery()}
        nth_latest = select(col(Message.scheduled_at)).where(*live).order_by(col(Message.scheduled_at).desc())
        return {"blocking_at": nth_latest.offset(rules.cap_count - 1).limit(1).scalar_subquery(),
                "live_count": select(func.count()).where(*live).scalar_subquery()}

    def defer(self, tick: Tick, ranked: Subquery) -> Deferral:
        """Blocked rows wait until the blocking message leaves the window; a customer's further
        triggers in this pass (`nth`, in trigger order) wait one window."""
        rules = tick.rules
        hours = int(rules.cap_window.total_seconds() // 3600)
        when_type = table_of(Message).c.scheduled_at.type
        blocked = ranked.c.blocking_at.is_not(None)
        over = ranked.c.nth > 1 if rules.cap_count == 1 else ranked.c.nth + ranked.c.live_count > rules.cap_count
        return Deferral(cap_deferred(rules.cap_count, hours), CAP_OK, branches=(
            (blocked, plus_hours(ranked.c.blocking_at, hours)),
            (over, literal(tick.now + rules.cap_window, when_type))))

    def prepare(self, batch: Batch) -> None:
        """Per customer of the batch: when scenario messages were sent within the window, newest first."""
        window = max(batch.rules(shop_id).cap_window for shop_id in batch.shops)
        rows = batch.session.execute(select(col(Message.customer_id), col(Message.sent_at)).where(
            col(Message.shop_id).in_(set(batch.shops)),  # the unique index's prefix
            col(Message.customer_id).in_({m.customer_id for m in batch.messages}),
            col(Message.status) == MessageStatus.sent, col(Message.sent_at) > batch.now - window)).all()
        sent: dict[int, list[datetime]] = {}
        for customer_id, at in rows:
            sent.setdefault(customer_id, []).append(as_utc(at))
        batch.state[self.name] = {c: sorted(times, reverse=True) for c, times in sent.items()}

    def recheck(self, batch: Batch, message: Message) -> Verdict | None:
        rules = batch.rules(message.shop_id)
        recent = [at for at in batch.state[self.name].get(message.customer_id, [])
                  if at > batch.now - rules.cap_window]
        if len(recent) >= rules.cap_count:
            return Defer(recent[rules.cap_count - 1] + rules.cap_window)
        return None

    def passed(self, batch: Batch, message: Message) -> None:
        batch.state[self.name].setdefault(message.customer_id, []).insert(0, batch.now)  # one per batch, too

"""Gate 4, quiet hours: nothing lands between quiet_start and quiet_end shop time (default
21:00–08:00); such messages are deferred to the end of the quiet hours, not dropped."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy.sql import Subquery

from plugin.gates.base import Batch, Defer, Deferral, Gate, Tick, Verdict
from plugin.gates.decisions import QUIET_OK, quiet_deferred
from plugin.storage.models import Message

__all__ = ["QuietHours"]


class QuietHours(Gate):
    name = "quiet"

    def defer(self, tick: Tick, ranked: Subquery) -> Deferral:
        at = tick.rules.next_allowed(tick.now)
        return Deferral(quiet_deferred(at), QUIET_OK, otherwise=at if at != tick.now else None)

    def recheck(self, batch: Batch, message: Message) -> Verdict | None:
        at = batch.rules(message.shop_id).next_allowed(batch.now)
        return Defer(at) if at != batch.now else None

    def land(self, batch: Batch, shop_id: int, at: datetime) -> datetime:
        return batch.rules(shop_id).next_allowed(at)

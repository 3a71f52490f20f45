"""Gate 2, idempotency: one message per (shop, customer, scenario, trigger), ever. A NOT EXISTS
probe at the tick, and the unique index on those columns when two ticks race. At delivery the
claim (pending → sending under a lease) is what keeps a message from going out twice."""
from __future__ import annotations

from sqlalchemy import ColumnElement
from sqlalchemy.sql import Subquery

from plugin.gates.base import Gate, Tick
from plugin.storage.models import trigger_key_sql, written

__all__ = ["Idempotency"]


class Idempotency(Gate):
    name = "idempotency"

    def where(self, tick: Tick, candidates: Subquery) -> list[ColumnElement[bool]]:
        if tick.one_per_customer:
            # At most one trigger per customer (a periodic pass): an earlier trigger cannot push
            # a new one behind it, and the unique key alone refuses a re-write — no probe needed.
            return []
        return [~written(tick.shop.id, candidates.c.customer_id, tick.scenario_key, trigger_key_sql(
            candidates.c.trigger_kind, candidates.c.trigger_ref, candidates.c.trigger_step))]

"""Gate 5, holdout: a deterministic share of each preset's audience (default 10 %) is written
as `control` and never sent, so the lift can be measured against it."""
from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy import BigInteger, cast, literal
from sqlalchemy.sql import Subquery

from plugin.gates.base import Gate, Hold, Tick
from plugin.gates.decisions import TREATMENT, control
from plugin.storage.models import MessageStatus

__all__ = ["Holdout", "holdout_bucket"]


class Holdout(Gate):
    name = "holdout"

    def hold(self, tick: Tick, ranked: Subquery) -> Hold:
        in_control = holdout_bucket(tick.shop.id or 0, tick.scenario_key, ranked.c.customer_id) < tick.holdout_percent
        return Hold(in_control, MessageStatus.control.value, control(tick.holdout_percent), TREATMENT)


def holdout_bucket(shop_id: int, scenario_key: str, customer_id: Any) -> Any:
    """0–99, fixed per (shop, scenario, customer): a multiplicative hash both databases compute alike."""
    salt = int.from_bytes(hashlib.sha256(f"{shop_id}:{scenario_key}".encode()).digest()[:3], "big")
    big = cast(customer_id, BigInteger)
    return (big * literal(2654435761, BigInteger) + literal(salt, BigInteger)) % literal(4294967296, BigInteger) % 100

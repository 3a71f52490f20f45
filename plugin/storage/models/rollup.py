"""The dashboard's rollups: counters per shop, scenario, step and local day of the shop, kept up to
date where messages are written, settled, opened, clicked and attributed (plugin.storage.rollup),
so that a period's figures read a few hundred rows instead of the period's messages."""
from __future__ import annotations

from datetime import date

from sqlmodel import Field, SQLModel


class RollupDay(SQLModel, table=True):
    """Per (shop, scenario, step, local day): `sent`, `opened` (messages with a first open or click),
    `clicked`, `conversions` and `revenue` on the day the message was sent; `treated_bought` (sent
    messages followed by an order within the attribution window) on that day too; `control` and
    `control_bought` on the day a held-out row was due."""

    __tablename__ = "rollup_days"

    shop_id: int = Field(primary_key=True)
    scenario_key: str = Field(primary_key=True, max_length=32)
    step: str = Field(primary_key=True, max_length=32)
    day: date = Field(primary_key=True)
    sent: int = 0
    opened: int = 0
    clicked: int = 0
    conversions: int = 0
    revenue: int = 0
    treated_bought: int = 0
    control: int = 0
    control_bought: int = 0


class RollupHeld(SQLModel, table=True):
    """Per (shop, scenario, local day the row was written, reason): rows not sent — held out
    (control), cancelled (suppressed, out of stock, exit, switched off), failed (a template failure
    also under `tpl:<kind>`), or still waiting (capped, quiet_hours, deferred, waiting)."""

    __tablename__ = "rollup_held"

    shop_id: int = Field(primary_key=True)
    scenario_key: str = Field(primary_key=True, max_length=32)
    day: date = Field(primary_key=True)
    reason: str = Field(primary_key=True, max_length=40)
    n: int = 0


class RollupMark(SQLModel, table=True):
    """How far the rollup has read the shop's orders (for the holdout arms' "bought")."""

    __tablename__ = "rollup_marks"

    shop_id: int = Field(primary_key=True)
    orders_seen: int = 0

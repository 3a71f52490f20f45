"""SQL building blocks the presets share (portable between SQLite and PostgreSQL)."""
from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Integer, String, cast, exists, literal, null
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement
from sqlmodel import col

from plugin.storage.models import Order

__all__ = ["trigger", "step_text", "day_text", "ordered_since", "local_month", "local_week"]


def trigger(kind: str, ref: Any = None, step: Any = None) -> list[Any]:
    """An audience's trigger columns (trigger_kind, trigger_ref, trigger_step); None: a typed NULL."""
    return [literal(kind, String).label("trigger_kind"),
            (cast(null(), Integer) if ref is None else ref).label("trigger_ref"),
            (cast(null(), String) if step is None else literal(step, String) if isinstance(step, str)
             else step).label("trigger_step")]


def step_text(*parts: Any) -> ColumnElement[str]:
    """A trigger step of several parts, built in SQL: literals and columns joined with ':'."""
    pieces = [literal(p, String) if isinstance(p, str) else cast(p, String) for p in parts]
    expr: ColumnElement[str] = pieces[0]
    for piece in pieces[1:]:
        expr = expr + literal(":") + piece
    return expr


class day_text(FunctionElement[str]):  # noqa: N801 (reads as a SQL function)
    """'YYYY-MM-DD' (UTC) of a timestamp column, on either database."""

    type = String()
    inherit_cache = True


@compiles(day_text, "sqlite")
def _day_sqlite(element: day_text, compiler: Any, **kw: Any) -> str:
    return f"date({compiler.process(list(element.clauses)[0], **kw)})"


@compiles(day_text, "postgresql")
def _day_postgres(element: day_text, compiler: Any, **kw: Any) -> str:
    return f"to_char({compiler.process(list(element.clauses)[0], **kw)} AT TIME ZONE 'UTC', 'YYYY-MM-DD')"


def ordered_since(shop_id: Any, customer_id: Any, since: Any) -> Any:
    """EXISTS an order (not cancelled) by the customer at or after `since`."""
    return exists().where(col(Order.shop_id) == shop_id, col(Order.customer_id) == customer_id,
                          col(Order.ordered_at) >= since, col(Order.canceled).is_(False))


def local_month(now: datetime, tz: str) -> str:
    """'YYYY-MM' of `now` in the zone `tz`."""
    return now.astimezone(ZoneInfo(tz)).strftime("%Y-%m")


def local_week(now: datetime, tz: str) -> str:
    """The ISO week of `now` in the zone `tz`, as 'YYYY-Www'."""
    year, week, _ = now.astimezone(ZoneInfo(tz)).isocalendar()
    return f"{year}-W{week:02d}"

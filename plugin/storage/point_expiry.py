"""The point expiry rule for platforms whose data has no expiry date: points expire a number of
calendar months after the customer's last order (a day past the target month's end is its last
day, as PostgreSQL's interval arithmetic has it). Kept in `Customer.points_expire_at` in SQL."""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement
from sqlmodel import Session, col

from plugin.storage.models import Customer, Shop

__all__ = ["add_months", "months_after", "refresh_point_expiry", "expiry_source", "MONTHS_RANGE"]

MONTHS_RANGE = (1, 120)


def add_months(moment: datetime, months: int) -> datetime:
    """`moment` plus calendar months; the day is clamped to the target month's last day."""
    import calendar

    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    return moment.replace(year=year, month=month, day=min(moment.day, calendar.monthrange(year, month)[1]))


class months_after(FunctionElement[datetime]):  # noqa: N801 (reads as a SQL function)
    """A UTC timestamp column plus a whole number of calendar months, on either database."""

    inherit_cache = False

    def __init__(self, column: Any, months: int) -> None:
        self.months = int(months)  # a validated integer, written into the SQL as a literal
        super().__init__(column)
        self.type = column.type  # the column's own type: values read back as aware datetimes


@compiles(months_after, "postgresql")
def _months_postgres(element: months_after, compiler: Any, **kw: Any) -> str:
    column = compiler.process(list(element.clauses)[0], **kw)
    return f"((({column}) AT TIME ZONE 'UTC') + make_interval(months => {element.months})) AT TIME ZONE 'UTC'"


@compiles(months_after, "sqlite")
def _months_sqlite(element: months_after, compiler: Any, **kw: Any) -> str:
    # SQLite rolls a day past the month's end into the next month (01-31 + 1 month = 03-03);
    # when the day changes, the month's last day is taken instead. Stored text keeps microseconds.
    column, n = compiler.process(list(element.clauses)[0], **kw), element.months
    rolled = f"strftime('%Y-%m-%d %H:%M:%f', {column}, '+{n} months') || '000'"
    last_day = (f"strftime('%Y-%m-%d', {column}, 'start of month', '+{n + 1} months', '-1 day') "
                f"|| strftime(' %H:%M:%f', {column}) || '000'")
    return (f"CASE WHEN strftime('%d', {column}, '+{n} months') = strftime('%d', {column}) "
            f"THEN {rolled} ELSE {last_day} END")


def refresh_point_expiry(session: Session, shop_id: int, months: int, customer_ids: Iterable[int] | None = None) -> None:
    """Every customer's (or the given customers') expiry from their last order, in one UPDATE."""
    query = update(Customer).where(col(Customer.shop_id) == shop_id, col(Customer.last_order_at).is_not(None))
    if customer_ids is not None:
        query = query.where(col(Customer.id).in_(list(customer_ids)))
    session.execute(query.values(points_expire_at=months_after(col(Customer.last_order_at), months)))


_SOURCE = {
    "ja": {"platform": "{source}: 有効期限は{source}のデータ(同期した日付)",
           "rule": "{source}: 最終購入日({last_order}) + {months}か月(ショップのルール)",
           "rule_no_order": "{source}: 最終購入日 + {months}か月(ショップのルール、購入履歴がないため期限なし)"},
    "en": {"platform": "{source}: the expiry date in {source}'s data (synced)",
           "rule": "{source}: last order ({last_order}) + {months} months (shop rule)",
           "rule_no_order": "{source}: last order + {months} months (shop rule; no order yet, so no expiry)"},
}


def expiry_source(shop: Shop, last_order_on: str, lang: str) -> str:
    """Where a customer's point expiry date comes from, in the merchant's or customer's language
    (Japanese unless English): the balance always from the platform; the date from its data, or
    from the shop's rule of N months after the last order (`last_order_on`, a local date; "" if none)."""
    words = _SOURCE["en" if lang == "en" else "ja"]
    source = shop.points_source or shop.platform
    if shop.points_expiry_from_platform:
        return words["platform"].format(source=source)
    key = "rule" if last_order_on else "rule_no_order"
    return words[key].format(source=source, last_order=last_order_on, months=shop.points_expiry_months)

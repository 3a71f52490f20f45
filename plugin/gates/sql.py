"""SQL the gates share, on either database."""
from __future__ import annotations

from typing import Any

from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

__all__ = ["plus_hours"]


class plus_hours(FunctionElement[Any]):  # noqa: N801 (reads as a SQL function)
    """A timestamp column plus a whole number of hours: plus_hours(column, 24)."""

    inherit_cache = True


def _hours(element: plus_hours, compiler: Any, **kw: Any) -> tuple[str, int]:
    column, hours = list(element.clauses)
    return compiler.process(column, **kw), int(hours.value)


@compiles(plus_hours, "sqlite")
def _plus_hours_sqlite(element: plus_hours, compiler: Any, **kw: Any) -> str:
    column, hours = _hours(element, compiler, **kw)
    return f"strftime('%Y-%m-%d %H:%M:%f000', {column}, '+{hours} hours')"


@compiles(plus_hours, "postgresql")
def _plus_hours_postgres(element: plus_hours, compiler: Any, **kw: Any) -> str:
    column, hours = _hours(element, compiler, **kw)
    return f"({column} + interval '{hours} hours')"

"""Dialect-aware bulk upsert (INSERT … ON CONFLICT) for SQLite and PostgreSQL."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Table, inspect
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, SQLModel

__all__ = ["upsert", "insert_ignore", "insert_plain", "table_of"]


def table_of(model: type[SQLModel]) -> Table:
    """A table model's Table, typed (SQLModel sets `__table__` but does not declare it)."""
    table = inspect(model).local_table
    assert isinstance(table, Table), model
    return table


def _insert(session: Session, table: Table) -> Any:
    dialect = session.get_bind().dialect.name
    return (postgresql if dialect == "postgresql" else sqlite).insert(table)


def upsert(
    session: Session,
    table: Table,
    rows: Sequence[dict[str, Any]],
    conflict: Sequence[str],
    update: Sequence[str],
    extra: dict[str, Any] | Callable[[Any], dict[str, Any]] | None = None,
) -> None:
    """Insert rows; on a conflict over `conflict` columns overwrite the `update` columns.

    `extra` adds SQL expressions to the update (a callable receives the `excluded` row).
    """
    if not rows:
        return
    stmt = _insert(session, table)
    more = extra(stmt.excluded) if callable(extra) else (extra or {})
    stmt = stmt.on_conflict_do_update(
        index_elements=list(conflict), set_={**{c: getattr(stmt.excluded, c) for c in update}, **more}
    )
    session.execute(stmt, list(rows))


def insert_ignore(
    session: Session, table: Table, rows: Sequence[dict[str, Any]], conflict: Sequence[str]
) -> list[int]:
    """Insert rows that do not conflict; return the ids (or, without an id column, 1s) inserted."""
    if not rows:
        return []
    key = table.c.id if "id" in table.c else table.c[conflict[0]]
    per_statement = max(1, 30_000 // (len(rows[0]) + 1))  # under SQLite's bound-parameter limit
    inserted: list[int] = []
    for start in range(0, len(rows), per_statement):
        # One multi-row INSERT … ON CONFLICT DO NOTHING RETURNING per chunk (SQLite ≥ 3.35, PostgreSQL).
        stmt = _insert(session, table).values(list(rows[start:start + per_statement]))
        result = session.execute(stmt.on_conflict_do_nothing(index_elements=list(conflict)).returning(key))
        inserted.extend(r[0] if key.name == "id" else 1 for r in result)
    return inserted


def insert_plain(session: Session, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert many rows whose values need no conversion (integers, text, booleans: no datetimes) in
    one driver-level executemany: a first sync writes hundreds of thousands of order lines, and
    SQLAlchemy's per-row parameter processing was most of their cost."""
    if not rows:
        return
    columns = list(rows[0])
    dialect = session.get_bind().dialect
    marker = "?" if dialect.paramstyle == "qmark" else "%s"
    preparer = dialect.identifier_preparer
    sql = (f"INSERT INTO {preparer.format_table(table)} ({', '.join(preparer.quote(c) for c in columns)}) "
           f"VALUES ({', '.join([marker] * len(columns))})")
    session.connection().exec_driver_sql(sql, [tuple(row[c] for c in columns) for row in rows])

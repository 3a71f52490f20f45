"""Dialect-aware bulk upsert (INSERT … ON CONFLICT) for SQLite and PostgreSQL."""
from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from itertools import chain
from typing import Any

from sqlalchemy import Dialect, Table, inspect
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, SQLModel
from sqlmodel.sql.sqltypes import UTCDateTime

__all__ = ["upsert", "upsert_ids", "insert_ignore", "insert_plain", "insert_rows", "delete_by_keys", "driver_execute",
           "ids_by_key", "values_by_key", "among", "table_of"]

Processor = Callable[[Any], Any] | None
CHUNK_ROWS = 256  # rows per multi-row statement: a few thousand parameters, far under either database's limit


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
    _executemany(session, stmt, rows)


def _executemany(session: Session, stmt: Any, rows: Sequence[dict[str, Any]]) -> None:
    """On SQLite, compile the statement once and hand every row to the driver's executemany: a first
    sync writes hundreds of thousands of rows, and SQLAlchemy's per-row parameter processing was most
    of their cost. Values go through each parameter's own type processing (aware datetimes included).
    On PostgreSQL, SQLAlchemy's own executemany (batched into multi-row VALUES) is faster than the driver's."""
    dialect = session.get_bind().dialect
    if dialect.name != "sqlite":  # psycopg: SQLAlchemy's batched multi-VALUES inserts are the fast way there
        session.execute(stmt, list(rows))
        return
    compiled = stmt.compile(dialect=dialect, column_keys=list(rows[0]))
    binds = {compiled.bind_names[bind]: bind for bind in compiled.binds.values()}  # by the name the SQL uses
    processors = {name: _processor(bind.type, dialect) for name, bind in binds.items()}
    fixed = dict(compiled.params)  # values the statement itself holds (e.g. `now` in an `extra` expression)
    for name in binds:  # a column the rows leave out takes its default, as SQLAlchemy would give it
        column = stmt.table.c.get(name)
        default = column.default if column is not None and name not in rows[0] else None
        if default is not None and not default.is_scalar:
            session.execute(stmt, list(rows))  # a computed default: SQLAlchemy's own executemany
            return
        if default is not None:
            fixed[name] = default.arg

    session.flush()  # what session.execute would autoflush first (rows these may point at)
    connection = session.connection()
    # One (name, processor) plan per parameter, made once: a first sync binds millions of values.
    given = rows[0].keys()
    if compiled.positiontup is not None:  # qmark / format styles (SQLite)
        names = list(compiled.positiontup)
        plan = [(n, processors.get(n), n not in given, None if n in given else _processed(processors.get(n), fixed[n]))
                for n in names]
        values = [tuple([c if k else (row[n] if p is None else p(row[n])) for n, p, k, c in plan]) for row in rows]
        connection.exec_driver_sql(compiled.string, values)
    else:  # a named style
        names = list(binds)
        constant = {n: _processed(processors.get(n), fixed[n]) for n in names if n not in given}
        named = [(n, processors.get(n)) for n in names if n not in constant]
        connection.exec_driver_sql(compiled.string, [
            {**constant, **{n: p(row[n]) if p is not None else row[n] for n, p in named}} for row in rows])


def _processed(processor: Callable[[Any], Any] | None, raw: Any) -> Any:
    return processor(raw) if processor is not None else raw


def _sqlite_utc(value: datetime | None) -> str | None:
    """SQLite's text for an aware time, exactly as SQLAlchemy writes it (naive UTC, microseconds)."""
    if value is None:
        return None
    if value.tzinfo is not UTC:
        if value.utcoffset() is None:
            raise ValueError("Datetime values must have timezone information.")
        value = value.astimezone(UTC)
    return value.isoformat(" ", "microseconds")[:26]  # the year is always 4 digits: cut "+00:00"


def _processor(column_type: Any, dialect: Dialect) -> Processor:
    """How a value of this type is bound on this dialect: its dialect implementation's processor, as
    SQLAlchemy's own execution applies it (the generic type's skipped SQLite's time format, and the
    driver's fallback then wrote `… 03:00:00+00:00` where everything else wrote `… 03:00:00.000000`)."""
    if dialect.name == "sqlite" and isinstance(column_type, UTCDateTime):
        return _sqlite_utc  # the same text as SQLAlchemy's processor, a third of its cost
    processor: Processor = column_type.dialect_impl(dialect).bind_processor(dialect)
    return processor


@lru_cache(maxsize=64)
def _row_sql(table: Table, columns: tuple[str, ...], dialect: Dialect) -> tuple[str, str, tuple[Processor, ...]]:
    """`INSERT INTO t (columns) VALUES`, one row's placeholders, and each column's processor."""
    quote = dialect.identifier_preparer
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    head = f"INSERT INTO {quote.format_table(table)} ({', '.join(quote.quote(c) for c in columns)}) VALUES "
    return head, f"({', '.join([mark] * len(columns))})", tuple(_processor(table.c[c].type, dialect) for c in columns)


def _row_chunks(session: Session, table: Table, columns: Sequence[str],
                rows: Sequence[Sequence[Any]]) -> Iterable[tuple[str, list[Any]]]:
    """Multi-row VALUES statements for `rows` (values in `columns`' order), each with its flat
    parameters processed by column type: one statement per chunk instead of one per row.

    Chunks hold CHUNK_ROWS rows, the rest goes in chunks of the powers of two it is made of: the
    driver caches each distinct statement prepared, and a few shapes a table keep that cache small
    (a shape per remainder length grew the process by a prepared statement per batch)."""
    if not rows:
        return
    dialect = session.get_bind().dialect
    if dialect.name == "postgresql":
        yield _unnest(table, tuple(columns), dialect, rows)
        return
    head, one, processors = _row_sql(table, tuple(columns), dialect)
    width = len(columns)
    typed = [(i, p) for i, p in enumerate(processors) if p is not None]
    start, left = 0, len(rows)
    while left:
        size = CHUNK_ROWS if left >= CHUNK_ROWS else 1 << (left.bit_length() - 1)
        flat = list(chain.from_iterable(rows[start:start + size]))
        for index, processor in typed:  # column by column: one slice assignment each
            flat[index::width] = [processor(value) for value in flat[index::width]]
        yield head + ", ".join([one] * size), flat
        start, left = start + size, left - size


def _unnest(table: Table, columns: tuple[str, ...], dialect: Dialect,
            rows: Sequence[Sequence[Any]]) -> tuple[str, list[Any]]:
    """PostgreSQL: every row in one `INSERT … SELECT FROM unnest(one array per column)`. A statement
    of thousands of placeholders is longer than psycopg caches its conversion for, and re-parsing it
    each time was most of the client's work."""
    quote = dialect.identifier_preparer
    arrays = ", ".join(f"%s::{table.c[c].type.compile(dialect=dialect)}[]" for c in columns)
    sql = (f"INSERT INTO {quote.format_table(table)} ({', '.join(quote.quote(c) for c in columns)}) "
           f"SELECT * FROM unnest({arrays})")
    processors = _row_sql(table, columns, dialect)[2]
    values = [list(column) for column in zip(*rows, strict=True)]
    return sql, [v if p is None else [p(x) for x in v] for v, p in zip(values, processors, strict=True)]


def insert_rows(session: Session, table: Table, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Insert rows given as value tuples in `columns`' order (no defaults are filled in)."""
    cursor = _driver_cursor(session)
    try:
        for sql, params in _row_chunks(session, table, columns, rows):
            cursor.execute(sql, params)
    finally:
        cursor.close()


def upsert_ids(session: Session, table: Table, columns: Sequence[str], rows: Sequence[Sequence[Any]],
               conflict: Sequence[str], update: Sequence[str], key: str = "external_id",
               newer: str | None = None) -> dict[str, int]:
    """Upsert rows given as value tuples in `columns`' order; return `{key: id}` of every row
    written, inserted or updated (RETURNING: no look-up afterwards). `rows` must not repeat a key.
    With `newer` (a column), a stored row is updated only by a row whose `newer` is not older: the
    rows left alone are not in the answer."""
    if not rows:
        return {}
    quote = session.get_bind().dialect.identifier_preparer
    guard = (f" WHERE excluded.{quote.quote(newer)} >= {quote.format_table(table)}.{quote.quote(newer)}"
             if newer else "")
    tail = (f" ON CONFLICT ({', '.join(quote.quote(c) for c in conflict)}) DO UPDATE SET "
            + ", ".join(f"{quote.quote(c)} = excluded.{quote.quote(c)}" for c in update)
            + f"{guard} RETURNING {quote.quote(key)}, id")
    cursor = _driver_cursor(session)
    ids: dict[str, int] = {}
    try:
        for sql, params in _row_chunks(session, table, columns, rows):
            cursor.execute(sql + tail, params)
            ids.update((str(k), int(i)) for k, i in cursor.fetchall())
    finally:
        cursor.close()
    return ids


def driver_execute(session: Session, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    """Run one statement in the driver's paramstyle on the session's connection (see `_driver_cursor`);
    returns the rows it answers (none for a statement without RETURNING)."""
    cursor = _driver_cursor(session)
    try:
        cursor.execute(sql, params)
        return list(cursor.fetchall()) if cursor.description else []
    finally:
        cursor.close()


def _driver_cursor(session: Session) -> Any:
    """A cursor of the session's own connection, inside its transaction: these statements run a
    few thousand times in a first sync, and SQLAlchemy's execution context around each (events,
    result wrapping) cost more than a row chunk's own insert."""
    session.flush()
    return session.connection().connection.cursor()


def among(session: Session, keys: Sequence[Any]) -> tuple[str, str, Any]:
    """For a raw statement on the driver's cursor: the dialect's placeholder, and a condition
    tail plus its one parameter testing that a column is among `keys` (`= ANY(%s)` with an array
    on PostgreSQL, `IN (SELECT value FROM json_each(?))` with a JSON array on SQLite): one
    parameter whatever their number, where an IN list of hundreds cost more to build than to run."""
    if session.get_bind().dialect.name == "postgresql":
        return "%s", "= ANY(%s)", list(keys)
    return "?", "IN (SELECT value FROM json_each(?))", json.dumps(list(keys))


def delete_by_keys(session: Session, table: Table, column: str, keys: Iterable[int]) -> None:
    """Delete the rows whose `column` is among `keys`, the keys as one parameter (`among`)."""
    wanted = list(keys)
    if not wanted:
        return
    quote = session.get_bind().dialect.identifier_preparer
    _, tail, param = among(session, wanted)
    driver_execute(session, f"DELETE FROM {quote.format_table(table)} WHERE {quote.quote(column)} {tail}", (param,))


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
    """Insert many rows through one compiled statement and the driver's executemany (see `_executemany`)."""
    if rows:
        _executemany(session, _insert(session, table), rows)


def ids_by_key(session: Session, table: Table, shop_id: int, keys: Iterable[str], key: str = "external_id") -> dict[str, int]:
    """`{key: id}` of the shop's rows whose `key` column is among `keys`, in one statement whatever
    their number: the keys travel as one parameter (`among`)."""
    return {str(k): int(i) for k, i in values_by_key(session, table, shop_id, keys, "id", key).items()}


def values_by_key(session: Session, table: Table, shop_id: int, keys: Iterable[str], column: str,
                  key: str = "external_id") -> dict[Any, Any]:
    """`{key: column}` of the shop's rows whose `key` is among `keys`, as `ids_by_key` reads them
    (values as the driver gives them: no type processing)."""
    wanted = list(dict.fromkeys(keys))
    if not wanted:
        return {}
    quote = session.get_bind().dialect.identifier_preparer
    name, by, value = quote.format_table(table), quote.quote(key), quote.quote(column)
    mark, tail, param = among(session, wanted)
    return dict(driver_execute(session, f"SELECT {by}, {value} FROM {name} WHERE shop_id = {mark} AND {by} {tail}",
                               (shop_id, param)))

"""Engine and sessions: SQLite (WAL, busy timeout) by default, PostgreSQL by DATABASE_URL."""
from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import DisconnectionError, OperationalError
from sqlalchemy.orm import sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry
from sqlmodel import Session

__all__ = ["make_engine", "make_session_factory", "migrate", "refresh_statistics", "MAX_ROW_ID"]

PING_AFTER_IDLE = 2.0  # seconds a pooled PostgreSQL connection may rest before its next checkout pings it
MAX_ROW_ID = 2**31 - 1  # ids are INTEGER: a larger one names no row, and PostgreSQL refuses to cast it (integer out of range)

log = logging.getLogger("okaeri.db")


def make_engine(url: str, **kwargs: object) -> Engine:
    """Create an engine; SQLite gets WAL, foreign keys and a busy timeout on every connection."""
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # UTC sessions: date expressions in audience SQL (trigger keys) must not depend on the server's zone.
    parsed = make_url(url)
    given = parsed.query.get("options", ())  # a tuple when the URL repeats the key
    options = " ".join(filter(None, ["-c timezone=UTC", *((given,) if isinstance(given, str) else given)]))
    engine = create_engine(parsed.difference_update_query(["options"]), connect_args={"options": options},
                           **{"pool_size": 10, "max_overflow": 20, **kwargs})
    _ping_when_rested(engine)
    return engine


def _ping_when_rested(engine: Engine) -> None:
    """pool_pre_ping, but only for a connection that rested in the pool: a dropped connection
    (a server restart, an idle timeout) is found and replaced before use, while a busy worker's
    connection, checked in and out again within milliseconds, does not pay a round trip each time
    (a small shop's tick job takes six checkouts). A connection the driver knows is closed or
    broken is replaced without asking. Raising DisconnectionError here is SQLAlchemy's documented
    way to make the pool discard the connection and take another."""
    def rested_since(_dbapi_connection: DBAPIConnection, record: ConnectionPoolEntry, *_: object) -> None:
        record.info["rested_since"] = time.monotonic()

    def check(dbapi_connection: DBAPIConnection, record: ConnectionPoolEntry, _proxy: object) -> None:
        if getattr(dbapi_connection, "closed", False) or getattr(dbapi_connection, "broken", False):
            raise DisconnectionError("the driver reports the connection closed")
        if time.monotonic() - record.info.get("rested_since", 0.0) < PING_AFTER_IDLE:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as exc:
            if engine.dialect.is_disconnect(exc, dbapi_connection, None):
                raise DisconnectionError(str(exc)) from exc
            raise

    event.listen(engine, "connect", rested_since)
    event.listen(engine, "checkin", rested_since)
    event.listen(engine, "checkout", check)


def _sqlite_pragmas(dbapi_connection: DBAPIConnection, _record: object) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, class_=Session, expire_on_commit=False)


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to `revision` with Alembic, on the given engine's connection."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def refresh_statistics(session: Session, tables: Sequence[str], *, vacuum: bool = True) -> bool:
    """VACUUM (ANALYZE) these tables on PostgreSQL after a bulk write, as its docs advise, rather
    than leave the next queries to plans made for the tables' old size until autovacuum gets there.

    ANALYZE alone gave the planner the row counts but left the visibility map unset, so every
    index-only probe of the fresh rows still read their heap pages: after a 1M-customer shop's
    first tick the next tick's idempotency and cap probes ran at about half speed until a vacuum
    (one that autovacuum may be slow to start, or never: some servers run with it off). A table
    another vacuum or analyse holds is skipped (that one will do); a no-op on SQLite. The session's
    transaction is committed first: VACUUM runs outside any, on a connection of its own. With
    `vacuum=False`, ANALYZE alone (a sample: cheap on any size). True when it ran."""
    if session.get_bind().dialect.name != "postgresql":
        return False
    session.commit()
    try:
        with session.get_bind().engine.connect() as connection:
            connection = connection.execution_options(isolation_level="AUTOCOMMIT")
            command = "VACUUM (ANALYZE, SKIP_LOCKED)" if vacuum else "ANALYZE (SKIP_LOCKED)"
            connection.execute(text(f"{command} {', '.join(tables)}"))
    except OperationalError:
        log.info("okaeri.db.analyze-skipped", extra={"tables": list(tables)})
        return False
    return True


def inserted_since_vacuum(session: Session, table: str) -> tuple[int, int, int]:
    """(rows inserted since the table's last vacuum, its live rows, the rows the planner last
    counted) from PostgreSQL's statistics; zeros elsewhere or before it has counted the table."""
    if session.get_bind().dialect.name != "postgresql":
        return 0, 0, 0
    row = session.execute(text(
        "SELECT s.n_ins_since_vacuum, s.n_live_tup, greatest(c.reltuples, 0)::bigint FROM pg_class c "
        "LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid WHERE c.oid = to_regclass(:table)"),
        {"table": table}).first()
    return (int(row[0] or 0), int(row[1] or 0), int(row[2] or 0)) if row else (0, 0, 0)

"""The PostgreSQL pool: a connection the server dropped while it rested is replaced before use,
and a busy connection is not pinged at every checkout (PostgreSQL only: SQLite has no server)."""
from __future__ import annotations

import pytest
from sqlalchemy import Engine, create_engine, text

from plugin.storage import db
from plugin.storage.db import make_engine


def _postgres(database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only (set DATABASE_URL): SQLite connections have no server to drop them")


def _counting_pings(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    pings: list[int] = []
    ping = engine.dialect.do_ping

    def counted(dbapi_connection: object) -> bool:
        pings.append(1)
        return ping(dbapi_connection)  # type: ignore[arg-type]

    monkeypatch.setattr(engine.dialect, "do_ping", counted)
    return pings


@pytest.mark.service
def test_a_connection_the_server_dropped_while_resting_is_replaced(database_url: str,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    _postgres(database_url)
    engine = make_engine(database_url, pool_size=1, max_overflow=0)
    admin = create_engine(database_url.split("?")[0].replace("postgresql://", "postgresql+psycopg://"),
                          isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            dropped = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
        with admin.connect() as connection:  # what a server restart or an idle timeout does
            connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": dropped})
        monkeypatch.setattr(db, "PING_AFTER_IDLE", 0.0)  # as if it had rested for a while
        pings = _counting_pings(engine, monkeypatch)
        with engine.connect() as connection:
            now_serving = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
        assert now_serving != dropped
        assert pings, "the rested connection was pinged"
    finally:
        engine.dispose()
        admin.dispose()


@pytest.mark.service
def test_a_busy_connection_is_not_pinged_at_every_checkout(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _postgres(database_url)
    engine = make_engine(database_url, pool_size=1, max_overflow=0)
    try:
        pings = _counting_pings(engine, monkeypatch)
        for _ in range(5):
            with engine.connect() as connection:
                assert connection.execute(text("SELECT 1")).scalar_one() == 1
        assert pings == []
        monkeypatch.setattr(db, "PING_AFTER_IDLE", 0.0)
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        assert pings == [1]
    finally:
        engine.dispose()

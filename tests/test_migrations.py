"""Alembic builds exactly the schema the models describe, from an empty database."""
from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

from plugin.storage.db import make_engine, migrate


def test_migrations_build_the_models_schema(database_url: str) -> None:
    engine = make_engine(database_url)
    migrate(engine)
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    engine.dispose()
    assert diff == []


def test_migrating_twice_is_harmless(database_url: str) -> None:
    engine = make_engine(database_url)
    migrate(engine)
    migrate(engine)
    engine.dispose()


def test_the_outbox_has_one_index_a_per_customer_probe_can_take(database_url: str) -> None:
    # The frequency cap and the other per-customer probes run once per candidate customer. When
    # a second index also started with shop_id (or customer_id), a planner without statistics
    # (a new install's first tick) took it and read the whole shop per probe: 5 s instead of
    # 0.7 s at 10k customers. Every other index must start elsewhere.
    from sqlalchemy import inspect

    engine = make_engine(database_url)
    migrate(engine)
    inspector = inspect(engine)
    leading = [(index["name"], index["column_names"][0]) for index in inspector.get_indexes("messages")]
    leading += [(unique["name"], unique["column_names"][0]) for unique in inspector.get_unique_constraints("messages")]
    engine.dispose()
    per_customer = sorted({name for name, column in leading if column in ("shop_id", "customer_id")})
    assert per_customer == ["uq_messages_trigger"], leading

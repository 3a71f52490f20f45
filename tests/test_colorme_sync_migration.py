"""Migration 0023 on a database that already holds a shop's synced rows (SQLite or PostgreSQL)."""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from plugin.storage.db import make_engine, migrate

NOW = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)


def _filler(column: sa.Column[Any]) -> Any:
    """A value for a required column with no default."""
    kind = column.type.python_type if hasattr(column.type, "python_type") else str
    return {int: 1, bool: False, datetime: NOW, str: "x"}.get(kind, "x")


def _insert(connection: sa.Connection, table: sa.Table, **values: Any) -> None:
    row = {c.name: _filler(c) for c in table.columns
           if not c.nullable and c.server_default is None and not c.primary_key}
    connection.execute(table.insert().values({**row, **values}))


def test_existing_customers_products_and_cursors_survive_migration_0023(database_url: str) -> None:
    # Given a database at 0021 holding a synced shop
    engine = make_engine(database_url)
    migrate(engine, "0021")
    meta = sa.MetaData()
    meta.reflect(engine, only=["shops", "customers", "products", "sync_states"])
    with engine.begin() as connection:
        _insert(connection, meta.tables["shops"], id=1, platform="colorme", external_id="PA00000001")
        _insert(connection, meta.tables["customers"], id=1, shop_id=1, external_id="5000001", email="a@example.jp")
        _insert(connection, meta.tables["products"], id=1, shop_id=1, external_id="100001", visible=True)
        _insert(connection, meta.tables["sync_states"], id=1, shop_id=1, resource="orders", cursor=NOW)
    # When it is migrated to the head
    migrate(engine)
    # Then the rows are members, not deleted, with their cursor and no backfill in progress
    with engine.connect() as connection:
        customer = connection.execute(sa.text("SELECT is_guest, deleted_at FROM customers")).one()
        product = connection.execute(sa.text("SELECT deleted_at, visible FROM products")).one()
        state = connection.execute(sa.text(
            "SELECT cursor, backfill_started_at, backfill_until FROM sync_states")).one()
    engine.dispose()
    assert not customer.is_guest and customer.deleted_at is None
    assert product.deleted_at is None and product.visible
    assert state.cursor is not None and state.backfill_started_at is None and state.backfill_until is None

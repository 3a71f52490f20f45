"""Alembic environment: runs on the connection handed in by plugin.storage.db.migrate."""
from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import plugin.storage.models  # noqa: F401  (registers every table on SQLModel.metadata)

target_metadata = SQLModel.metadata


def run_migrations() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        from sqlalchemy import create_engine

        url = context.config.get_main_option("sqlalchemy.url")
        connection = create_engine(url).connect()
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations()

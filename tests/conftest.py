"""Fixtures: a fresh database per test (SQLite file, or a PostgreSQL schema when DATABASE_URL
is set), the broker from BROKER_URL (in-process by default), a frozen clock, an SMTP catcher."""
from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import dramatiq
import pytest
from sqlalchemy import Engine, create_engine, text
from sqlmodel import Session, SQLModel

import plugin.storage.models  # noqa: F401
from plugin.clock import FrozenClock
from plugin.demo.mailcatcher import MailCatcher
from plugin.jobs.broker import build_broker
from plugin.runtime import Runtime, build_runtime
from plugin.settings import Settings
from plugin.storage.db import make_engine

SECRET = "test-secret-key-0123456789abcdef0123456789"
ON_CI = os.environ.get("CI") == "true"


def pytest_report_header() -> list[str]:
    return [f"okaeri: DATABASE_URL={os.environ.get('DATABASE_URL') or 'sqlite (per test)'} "
            f"BROKER_URL={os.environ.get('BROKER_URL') or 'memory://'}"]


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    """An empty database: a SQLite file, or a new PostgreSQL schema dropped afterwards."""
    base = os.environ.get("DATABASE_URL", "")
    if not base.startswith("postgresql"):
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    separator = "&" if "?" in base else "?"
    yield f"{base}{separator}options=-csearch_path%3D{schema}"
    with admin.connect() as conn:
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    SQLModel.metadata.create_all(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with Session(engine, expire_on_commit=False) as session:
        yield session


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(datetime(2026, 11, 20, 3, 0, tzinfo=UTC))  # 12:00 in Tokyo


@pytest.fixture
def broker() -> Iterator[dramatiq.Broker]:
    url = os.environ.get("BROKER_URL", "memory://")
    broker = build_broker(url, namespace=f"okaeri-test-{uuid.uuid4().hex[:8]}")
    yield broker
    if hasattr(broker, "flush_all"):
        broker.flush_all()
    broker.close()


@pytest.fixture
def catcher() -> Iterator[MailCatcher]:
    catcher = MailCatcher().start()
    yield catcher
    catcher.stop()


@pytest.fixture
def settings(tmp_path: Path, database_url: str, catcher: MailCatcher) -> Settings:
    return Settings(
        OKAERI_DATA_DIR=tmp_path, DATABASE_URL=database_url, OKAERI_SECRET_KEY=SECRET,
        OKAERI_BASE_URL="http://okaeri.test", OKAERI_SMTP_PORT=catcher.port,
        OKAERI_MAIL_FROM="shop-mail@okaeri.test", COLORME_CLIENT_ID="cid", COLORME_CLIENT_SECRET="csecret",
        COLORME_WEBHOOK_SECRET="whsecret", COLORME_API_BASE="https://api.shop-pro.jp",
        OKAERI_REDIS_NAMESPACE=f"okaeri-test-{uuid.uuid4().hex[:8]}",  # rate-limit counts of one test only
    )  # type: ignore[call-arg]


@pytest.fixture
def runtime(settings: Settings, engine: Engine, clock: FrozenClock, broker: dramatiq.Broker) -> Iterator[Runtime]:
    runtime = build_runtime(settings, clock=clock, broker=broker, engine=engine)
    yield runtime
    runtime.close_channels()


def require_service(name: str, reachable: bool, why: str) -> None:
    """Skip when a service is missing, except on CI where it must be there."""
    if not reachable:
        if ON_CI:
            pytest.fail(f"{name} is required on CI: {why}")
        pytest.skip(f"{name} not available: {why}")


# The Shopify app tests share a sandbox shop and a runtime configured as its app (tests/shopify_app.py);
# the delivery tests a `relay` fixture that runs each of them against both kinds of relay (tests/faulty_smtp.py).
pytest_plugins = ["tests.shopify_app", "tests.faulty_smtp"]

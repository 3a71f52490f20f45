"""/readyz tells an operator (or a load balancer) which part is down; /healthz only that the
process answers. The worker and the scheduler serve the same probes on a port of their own."""
from __future__ import annotations

import httpx
import pytest
from fastapi.testclient import TestClient

from plugin.jobs.broker import build_broker
from plugin.jobs.health import HealthServer, readiness
from plugin.runtime import build_runtime
from plugin.storage.db import make_engine, migrate
from plugin.web.app import create_app
from tests.conftest import require_service
from tests.services import reachable

UNREACHABLE_PG = "postgresql://okaeri@127.0.0.1:1/okaeri"  # nothing listens on port 1
UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"


def _migrated_runtime(settings, clock, broker, tmp_path):  # type: ignore[no-untyped-def]
    engine = make_engine(f"sqlite:///{tmp_path / 'ready.db'}")
    migrate(engine)
    return build_runtime(settings, clock=clock, broker=broker, engine=engine)


def test_a_migrated_database_and_a_live_broker_are_ready(settings, clock, broker, tmp_path) -> None:  # type: ignore[no-untyped-def]
    answer = TestClient(create_app(_migrated_runtime(settings, clock, broker, tmp_path))).get("/readyz")
    assert answer.status_code == 200
    assert answer.json()["status"] == "ready" and answer.json()["failing"] == []
    assert {check["name"] for check in answer.json()["checks"]} == {"database", "migrations", "broker"}


def test_an_unreachable_database_is_named(settings, clock, broker) -> None:  # type: ignore[no-untyped-def]
    runtime = build_runtime(settings, clock=clock, broker=broker, engine=make_engine(UNREACHABLE_PG))
    answer = TestClient(create_app(runtime)).get("/readyz")
    assert answer.status_code == 503
    assert answer.json()["failing"] == ["database", "migrations"]
    assert "127.0.0.1" not in answer.text  # the probe may be public: no host names
    assert TestClient(create_app(runtime)).get("/healthz").status_code == 200  # the process itself is up


def test_an_unreachable_broker_is_named(settings, clock, tmp_path) -> None:  # type: ignore[no-untyped-def]
    runtime = _migrated_runtime(settings, clock, build_broker(UNREACHABLE_REDIS), tmp_path)
    answer = TestClient(create_app(runtime)).get("/readyz")
    assert answer.status_code == 503 and answer.json()["failing"] == ["broker"]


def test_a_schema_behind_the_newest_migration_is_not_ready(runtime) -> None:  # type: ignore[no-untyped-def]
    # the test database is built from the models, with no migration recorded
    answer = TestClient(create_app(runtime)).get("/readyz")
    assert answer.status_code == 503 and answer.json()["failing"] == ["migrations"]
    assert "okaeri migrate" in next(c["detail"] for c in answer.json()["checks"] if c["name"] == "migrations")


def test_a_hanging_check_answers_within_its_deadline(settings, clock, broker, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import threading

    import plugin.jobs.health as health

    release = threading.Event()
    monkeypatch.setattr(health, "_broker", lambda _broker: release.wait(5) and [])
    try:
        checks = readiness(_migrated_runtime(settings, clock, broker, tmp_path).engine, broker, timeout=0.2)
    finally:
        release.set()
    assert [c.name for c in checks if not c.ok] == ["broker"]
    assert "no answer within 0.2 s" in [c.detail for c in checks if c.name == "broker"][0]


def test_a_worker_probe_reports_its_threads_and_the_readiness(settings, clock, broker, tmp_path) -> None:  # type: ignore[no-untyped-def]
    runtime = _migrated_runtime(settings, clock, broker, tmp_path)
    alive = [True]
    server = HealthServer("127.0.0.1", 0, lambda: readiness(runtime.engine, runtime.broker), lambda: alive[0]).start()
    try:
        base = f"http://127.0.0.1:{server.port}"
        assert httpx.get(f"{base}/healthz").status_code == 200
        assert httpx.get(f"{base}/readyz").json()["status"] == "ready"
        alive[0] = False  # the worker's threads have stopped
        assert httpx.get(f"{base}/healthz").status_code == 503
        assert httpx.get(f"{base}/readyz").status_code == 503
        assert httpx.get(f"{base}/nothing").status_code == 404
    finally:
        server.stop()


def test_okaeri_status_prints_each_part_and_fails_when_one_is_down(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from click.testing import CliRunner

    from plugin.cli import cli
    from tests.conftest import SECRET

    database = f"sqlite:///{tmp_path / 'status.db'}"
    migrate(make_engine(database))
    monkeypatch.setenv("OKAERI_SECRET_KEY", SECRET)
    monkeypatch.setenv("DATABASE_URL", database)
    ready = CliRunner().invoke(cli, ["status"])
    assert ready.exit_code == 0, ready.output
    assert [line.split()[:2] for line in ready.output.splitlines()] == [
        ["ok", "database"], ["ok", "migrations"], ["ok", "broker"]]

    monkeypatch.setenv("BROKER_URL", UNREACHABLE_REDIS)
    down = CliRunner().invoke(cli, ["status"])
    assert down.exit_code == 1 and "FAIL broker" in down.output and "not ready: broker" in down.output


@pytest.mark.service
def test_rabbitmq_is_checked_with_a_connection_of_its_own(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import os

    url = os.environ.get("RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
    require_service("RabbitMQ", reachable(url, 5672), f"{url} unreachable (set RABBITMQ_URL)")
    engine = make_engine(f"sqlite:///{tmp_path / 'ready.db'}")
    migrate(engine)
    live = readiness(engine, build_broker(url))
    down = readiness(engine, build_broker("amqp://guest:guest@127.0.0.1:1/"))
    assert [c.name for c in live if not c.ok] == []
    assert [c.name for c in down if not c.ok] == ["broker"]

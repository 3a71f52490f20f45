"""Readiness: can this process do its work? The database answers, its schema is at the newest
migration, and the broker answers. Shared by the web app's `/readyz`, the worker's and the
scheduler's health port and `okaeri status`.

Each check runs with a deadline, so an unreachable host makes the answer "not ready" within
seconds instead of hanging the probe.
"""
from __future__ import annotations

import http.server
import json
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import dramatiq
from sqlalchemy import Engine, text

from plugin.jobs.broker import is_in_process

__all__ = ["Check", "readiness", "is_ready", "HealthServer", "CHECK_TIMEOUT"]

CHECK_TIMEOUT = 3.0  # seconds per check

log = logging.getLogger("okaeri.health")


@dataclass(frozen=True)
class Check:
    """One part's state: `name` is database, migrations or broker; `detail` says what failed."""

    name: str
    ok: bool
    detail: str = ""


def readiness(engine: Engine, broker: dramatiq.Broker, timeout: float = CHECK_TIMEOUT) -> list[Check]:
    """Database, migrations and broker, each checked within `timeout` seconds."""
    # Not `with`: leaving that block would wait for a check that hangs, the thing the deadline prevents.
    pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="okaeri-health")
    try:
        futures = (("database", pool.submit(_database, engine)), ("broker", pool.submit(_broker, broker)))
        checks: list[Check] = []
        for name, future in futures:
            try:
                checks.extend(future.result(timeout=timeout))
            except FutureTimeout:
                checks.append(Check(name, False, f"no answer within {timeout:g} s"))
            except Exception as exc:  # noqa: BLE001 - any failure is the answer
                log.warning("okaeri.health.failed", extra={"part": name, "error": str(exc)[:500]})
                checks.append(Check(name, False, type(exc).__name__))  # no host names on a public probe
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    if not any(check.name == "migrations" for check in checks):
        checks.insert(1, Check("migrations", False, "not checked: the database did not answer"))
    return checks


def is_ready(checks: list[Check]) -> bool:
    return all(check.ok for check in checks)


def _database(engine: Engine) -> list[Check]:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))
        current = set(MigrationContext.configure(connection).get_current_heads())
    head = _head_revisions()
    if current == head:
        migrations = Check("migrations", True, ",".join(sorted(head)))
    elif not current:
        migrations = Check("migrations", False, "no migration applied: run `okaeri migrate`")
    else:
        migrations = Check("migrations", False, f"at {','.join(sorted(current))}, newest is "
                                                f"{','.join(sorted(head))}: run `okaeri migrate`")
    return [Check("database", True, engine.dialect.name), migrations]


@lru_cache(maxsize=1)
def _head_revisions() -> frozenset[str]:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parents[1] / "storage" / "migrations"))
    return frozenset(ScriptDirectory.from_config(config).get_heads())


def _broker(broker: dramatiq.Broker) -> list[Check]:
    if is_in_process(broker):
        return [Check("broker", True, "in-process")]
    client = getattr(broker, "client", None)
    if client is not None:  # Redis
        client.ping()
        return [Check("broker", True, "redis")]
    parameters = getattr(broker, "parameters", None)
    if parameters is not None:  # RabbitMQ: a fresh connection of our own, closed at once
        import copy

        import pika  # type: ignore[import-untyped]

        params = copy.copy(parameters[0] if isinstance(parameters, list) else parameters)
        params.socket_timeout = params.blocked_connection_timeout = CHECK_TIMEOUT
        pika.BlockingConnection(params).close()
        return [Check("broker", True, "rabbitmq")]
    return [Check("broker", True, type(broker).__name__)]


class HealthServer:
    """`/healthz`, `/readyz` and `/metrics` on a port of their own, for a worker or scheduler process.

    `alive` says whether the process's own work loop still runs (worker threads, scheduler loop).
    """

    def __init__(self, host: str, port: int, ready: Callable[[], list[Check]], alive: Callable[[], bool],
                 metrics: Callable[[], bytes] | None = None) -> None:
        self._ready, self._alive, self._metrics = ready, alive, metrics
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
                if self.path.split("?", 1)[0] == "/metrics" and owner._metrics is not None:
                    status, payload, kind = 200, owner._metrics(), "text/plain; version=0.0.4; charset=utf-8"
                else:
                    status, body = owner.answer(self.path)
                    payload, kind = json.dumps(body, ensure_ascii=False).encode(), "application/json; charset=utf-8"
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the stdlib's name
                pass

        self._server = http.server.ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="okaeri-health", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def answer(self, path: str) -> tuple[int, dict[str, object]]:
        """The status code and JSON body for one probe path."""
        if path.split("?", 1)[0] == "/healthz":
            alive = self._alive()
            return (200 if alive else 503), {"status": "ok" if alive else "stopped"}
        if path.split("?", 1)[0] == "/readyz":
            checks = self._ready()
            ready = is_ready(checks) and self._alive()
            return (200 if ready else 503), readiness_body(checks, ready)
        return 404, {"error": "not found"}

    def start(self) -> HealthServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def readiness_body(checks: list[Check], ready: bool | None = None) -> dict[str, object]:
    """The JSON of `/readyz`: `status`, the failing parts by name, and every check."""
    ready = is_ready(checks) if ready is None else ready
    return {"status": "ready" if ready else "not ready",
            "failing": [check.name for check in checks if not check.ok],
            "checks": [asdict(check) for check in checks]}

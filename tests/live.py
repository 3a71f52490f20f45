"""A live Okaeri + sandbox shop on a loopback port, for end-to-end and browser tests."""
from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import dramatiq
import uvicorn
from sqlalchemy import select

from plugin.clock import OffsetClock
from plugin.demo.mailcatcher import free_port
from plugin.demo.stack import DemoStack, build_demo
from plugin.jobs.worker import start_worker
from plugin.settings import Settings
from plugin.storage.models import Shop, SyncState


def to_shop_noon() -> timedelta:
    """How far to move the clock so it is 12:00 in Tokyo: quiet hours must not hide mail in tests."""
    now = datetime.now(UTC)
    local = now.astimezone(ZoneInfo("Asia/Tokyo"))
    noon = local.replace(hour=12, minute=0, second=0, microsecond=0)
    return noon - local if noon >= local else noon + timedelta(days=1) - local


@contextmanager
def serve(app: Any, port: int, *, log_level: str = "warning") -> Iterator[None]:
    """Serve an ASGI app with uvicorn on a loopback port in a thread, until the block ends."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level=log_level))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(10)


@contextmanager
def live_demo(settings: Settings, broker: dramatiq.Broker) -> Iterator[DemoStack]:
    """Web + in-process worker + sandbox, as `okaeri demo` wires them, on a free port."""
    port = free_port()
    stack = build_demo(settings, "127.0.0.1", port, seed=42, broker=broker, clock=OffsetClock(to_shop_noon()))
    worker = start_worker(stack.runtime, threads=4)
    try:
        with serve(stack.app, port):
            yield stack
    finally:
        worker.stop()
        stack.catcher.stop()
        stack.runtime.close_channels()
        stack.runtime.engine.dispose()


def wait_until(predicate, timeout: float = 60, interval: float = 0.2) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


def trained(stack: DemoStack) -> bool:
    with stack.runtime.sessions() as session:
        return session.execute(select(Shop.recommendation_set_id)).scalar() is not None


def synced(stack: DemoStack) -> bool:
    with stack.runtime.sessions() as session:
        return session.execute(select(SyncState.id).where(SyncState.resource == "orders")).first() is not None

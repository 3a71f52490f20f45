"""SIGTERM (what systemd, Docker and Kubernetes send) stops each process cleanly: a worker
finishes the batch it holds — no row left in `sending`, nothing sent twice — and the scheduler
gives its lease back so a standby takes over at once. Real processes, real signals."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from plugin.clock import SystemClock, daytime_zone
from plugin.engine.tick import run_shop_tick
from plugin.jobs.broker import build_broker
from plugin.jobs.worker import start_worker
from plugin.runtime import build_runtime
from plugin.storage.models import Lease, Message, MessageStatus, rfc_message_id
from tests.conftest import require_service
from tests.factories import idle_cart_shop
from tests.faulty_smtp import FaultySmtp
from tests.live import wait_until
from tests.services import reachable, redis_url

pytestmark = pytest.mark.slow


@pytest.fixture
def relay() -> Iterator[FaultySmtp]:
    server = FaultySmtp().start()
    yield server
    server.stop()


def _env(settings, smtp_port: int, **extra: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {**os.environ, "DATABASE_URL": settings.effective_database_url, "OKAERI_SECRET_KEY": settings.secret_key,
            "OKAERI_SMTP_PORT": str(smtp_port), "OKAERI_SHUTDOWN_TIMEOUT": "30", **extra}


def _okaeri(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "plugin", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _stopped(child: subprocess.Popen[str], timeout: float = 45) -> int:
    child.send_signal(signal.SIGTERM)
    try:
        return child.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
        raise AssertionError("the process did not stop within its shutdown timeout") from None


@pytest.mark.service
def test_sigterm_during_a_batch_leaves_nothing_claimed_and_sends_nothing_twice(settings, engine, session, relay) -> None:  # type: ignore[no-untyped-def]
    url = redis_url()
    require_service("Redis", reachable(url), f"{url} unreachable (set BROKER_URL=redis://…)")
    namespace = f"okaeri-test-{uuid.uuid4().hex[:8]}"
    broker = build_broker(url, namespace=namespace)
    shop, people, _ = idle_cart_shop(session, SystemClock().now(), customers=12)
    shop.timezone = daytime_zone()
    session.commit()
    # Given a worker process delivering to a relay that takes a while per mail
    relay.delay = 0.25
    worker = _okaeri("worker", "--threads", "2",
                     env=_env(settings, relay.port, BROKER_URL=url, OKAERI_REDIS_NAMESPACE=namespace))
    writer = build_runtime(settings, engine=engine, broker=broker)
    try:
        writer.tasks.deliver(run_shop_tick(writer, shop.id), writer.clock.now())
        assert wait_until(lambda: len(relay.counts()) >= 2, timeout=60), worker.stderr.read() if worker.poll() else ""
        # When it gets SIGTERM mid-batch
        assert len(relay.counts()) < 12
        assert _stopped(worker) == 0
        # Then it exited with no message left claimed, and each accepted mail went once
        session.expire_all()
        claimed = session.execute(select(func.count()).where(Message.status == MessageStatus.sending)).scalar()
        assert claimed == 0
        assert all(count == 1 for count in relay.counts().values())
        # and a new worker sends what was left, still once each
        relay.delay = 0
        finisher = build_runtime(settings.model_copy(update={"smtp_port": relay.port}), engine=engine, broker=broker)
        consumer = start_worker(finisher, threads=2)
        try:
            assert wait_until(lambda: len(relay.counts()) >= 12, timeout=60)
            time.sleep(0.5)
        finally:
            consumer.stop()
            finisher.close_channels()
    finally:
        if worker.poll() is None:
            worker.kill()
        broker.flush_all()
        broker.close()
    session.expire_all()
    messages = list(session.execute(select(Message)).scalars())
    assert relay.counts() == {rfc_message_id(m): 1 for m in messages} and len(messages) == len(people)


def test_sigterm_to_the_scheduler_gives_its_lease_back_at_once(settings, session, catcher) -> None:  # type: ignore[no-untyped-def]
    scheduler = _okaeri("scheduler", "--interval", "1", env=_env(settings, catcher.port, BROKER_URL="memory://"))

    def held() -> bool:
        session.expire_all()
        return session.execute(select(Lease).where(Lease.name == "scheduler")).first() is not None

    try:
        assert wait_until(held, timeout=60), scheduler.stderr.read() if scheduler.poll() else ""
        assert _stopped(scheduler) == 0
    finally:
        if scheduler.poll() is None:
            scheduler.kill()
    assert not held()  # a standby need not wait for the lease to run out

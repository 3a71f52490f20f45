"""Nothing is lost when a worker dies, and nothing is sent twice when it comes back."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from plugin.clock import SystemClock, daytime_zone
from plugin.jobs.worker import start_worker
from plugin.runtime import build_runtime
from plugin.storage.models import Message, MessageStatus
from tests.factories import idle_cart_shop
from tests.live import wait_until

pytestmark = pytest.mark.slow

# A process that writes the outbox and hands messages to the broker, then dies before any
# worker delivers them (its in-process queue dies with it; a Redis queue survives).
WRITER = textwrap.dedent("""
    import sys, time
    from plugin.settings import load_settings
    from plugin.runtime import build_runtime
    runtime = build_runtime(load_settings())
    from plugin.engine.tick import run_shop_tick
    for message_id, due in run_shop_tick(runtime, int(sys.argv[1])):
        runtime.tasks.deliver([(message_id, due)], runtime.clock.now())
    print("written", flush=True)
    time.sleep(600)
""")


def test_worker_killed_between_outbox_write_and_delivery_delivers_each_once(settings, session, broker, catcher):  # type: ignore[no-untyped-def]
    # Given idle carts and a process that wrote their reminders, then was killed
    shop, people, _ = idle_cart_shop(session, SystemClock().now(), customers=6)
    shop.timezone = daytime_zone()  # real clock: keep the send out of quiet hours, whatever the hour here
    session.commit()
    env = {**os.environ, "DATABASE_URL": settings.effective_database_url, "OKAERI_SECRET_KEY": settings.secret_key,
           "BROKER_URL": os.environ.get("BROKER_URL", "memory://"), "OKAERI_SMTP_PORT": str(catcher.port)}
    namespace = getattr(broker, "namespace", None)
    if namespace:
        env["OKAERI_REDIS_NAMESPACE"] = namespace
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(shop.id)], env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "written"
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait()
    assert session.execute(select(func.count()).where(Message.status == MessageStatus.pending)).scalar() == 6
    # When a new worker starts and the sweeper runs after the hand-off went stale
    runtime = build_runtime(settings, broker=broker)
    worker = start_worker(runtime, threads=3)
    try:
        runtime.clock = _later(minutes=11)
        runtime.tasks.sweep_outbox()
        assert wait_until(lambda: len(catcher.snapshot()) >= 6, timeout=30)
        time.sleep(1)  # let any duplicate hand-off (Redis kept the first one) run out
    finally:
        worker.stop()
        runtime.close_channels()
        runtime.engine.dispose()
    # Then each customer got exactly one reminder
    recipients = sorted(m["To"].addresses[0].addr_spec for m in catcher.snapshot())
    assert recipients == sorted(p.email for p in people)
    session.expire_all()
    assert set(session.execute(select(Message.status)).scalars()) == {MessageStatus.sent}


def _later(**delta: float) -> SystemClock:
    class Later(SystemClock):
        def now(self):  # type: ignore[no-untyped-def]
            return super().now() + timedelta(**delta)

    return Later()

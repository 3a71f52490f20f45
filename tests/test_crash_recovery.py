"""Nothing is lost when a worker dies, and nothing is sent twice when it comes back: at most the
one mail each of its threads was transferring when it was killed, with the same Message-ID.

The kills are real (SIGKILL of a child process) and happen mid-batch: the child is killed once
the SMTP server has accepted part of what it claimed. Sends are counted by the Message-IDs the
server accepted."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from plugin.clock import OffsetClock, SystemClock, daytime_zone
from plugin.delivery.batch import deliver_batch
from plugin.engine.tick import run_shop_tick
from plugin.jobs.scheduler import Scheduler
from plugin.jobs.worker import start_worker
from plugin.runtime import build_runtime
from plugin.storage import outbox
from plugin.storage.models import Message, MessageStatus, rfc_message_id
from tests.factories import idle_cart_shop
from tests.faulty_smtp import FaultySmtp
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

# A worker process delivering claimed batches on several threads, as `okaeri worker` does.
BATCHES = textwrap.dedent("""
    import json, sys, threading, time
    from plugin.settings import load_settings
    from plugin.runtime import build_runtime
    from plugin.delivery.batch import deliver_batch
    runtime = build_runtime(load_settings())
    batches = json.loads(sys.argv[1])
    threads = [threading.Thread(target=deliver_batch, args=(runtime, ids)) for ids in batches]
    for t in threads:
        t.start()
    print("started", flush=True)
    time.sleep(600)
""")

# `okaeri demo`'s delivery: the in-process broker and its worker threads in one process.
EMBEDDED = textwrap.dedent("""
    import sys, time
    from plugin.settings import load_settings
    from plugin.runtime import build_runtime
    from plugin.jobs.worker import start_worker
    from plugin.engine.tick import run_shop_tick
    runtime = build_runtime(load_settings())
    worker = start_worker(runtime, threads=2)
    runtime.tasks.deliver(run_shop_tick(runtime, int(sys.argv[1])), runtime.clock.now())
    print("started", flush=True)
    time.sleep(600)
""")


@pytest.fixture
def relay() -> Iterator[FaultySmtp]:
    server = FaultySmtp().start()
    yield server
    server.stop()


def _child_env(settings, broker, smtp_port: int) -> dict[str, str]:  # type: ignore[no-untyped-def]
    env = {**os.environ, "DATABASE_URL": settings.effective_database_url, "OKAERI_SECRET_KEY": settings.secret_key,
           "BROKER_URL": os.environ.get("BROKER_URL", "memory://"), "OKAERI_SMTP_PORT": str(smtp_port)}
    namespace = getattr(broker, "namespace", None)
    if namespace:
        env["OKAERI_REDIS_NAMESPACE"] = namespace
    return env


def _daytime_shop(session, customers: int):  # type: ignore[no-untyped-def]
    shop, people, _ = idle_cart_shop(session, SystemClock().now(), customers=customers)
    shop.timezone = daytime_zone()  # real clock: keep the send out of quiet hours, whatever the hour here
    session.commit()
    return shop, people


def _kill_when(child: subprocess.Popen[str], ready: str, condition) -> None:  # type: ignore[no-untyped-def]
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == ready
        assert wait_until(condition, timeout=30)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()


def _after_the_leases(settings, broker, engine):  # type: ignore[no-untyped-def]
    """A runtime whose clock is past every lease a dead process could still hold."""
    return build_runtime(settings, broker=broker, engine=engine,
                         clock=OffsetClock(outbox.LEASE + timedelta(seconds=1)))


def _each_once_but(relay: FaultySmtp, session, people, in_flight: int) -> None:  # type: ignore[no-untyped-def]
    """Every customer's mail arrived; beyond one each, at most `in_flight` arrived again."""
    session.expire_all()
    messages = list(session.execute(select(Message)).scalars())
    counts = relay.counts()
    assert set(counts) == {rfc_message_id(m) for m in messages} and len(messages) == len(people)
    assert sum(counts.values()) - len(counts) <= in_flight
    assert {m.status for m in messages} == {MessageStatus.sent}


def test_worker_killed_between_outbox_write_and_delivery_delivers_each_once(settings, session, broker, relay, engine):  # type: ignore[no-untyped-def]
    # Given idle carts and a process that wrote their reminders, then was killed
    shop, people = _daytime_shop(session, customers=6)
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(shop.id)], env=_child_env(settings, broker, relay.port),
                              stdout=subprocess.PIPE, text=True)
    _kill_when(writer, "written", lambda: True)
    assert session.execute(select(func.count()).where(Message.status == MessageStatus.pending)).scalar() == 6
    # When a new worker starts (no sweep, no waiting: the in-process queue's hand-offs are redone
    # at its start; a Redis queue kept them)
    runtime = build_runtime(settings.model_copy(update={"smtp_port": relay.port}), broker=broker, engine=engine)
    worker = start_worker(runtime, threads=3)
    try:
        assert wait_until(lambda: len(relay.counts()) >= 6, timeout=30)
        time.sleep(1)  # let any duplicate hand-off run out
    finally:
        worker.stop()
        runtime.close_channels()
    # Then each customer got exactly one reminder
    _each_once_but(relay, session, people, in_flight=0)


def test_worker_killed_mid_batch_resends_at_most_one_mail_per_thread(settings, session, broker, relay, engine):  # type: ignore[no-untyped-def]
    # Given a worker process delivering two batches of 8 on two threads, to a relay that takes
    # a little while per mail, killed once the relay has accepted a third of them
    shop, people = _daytime_shop(session, customers=16)
    ids = [message_id for message_id, _ in run_shop_tick(build_runtime(settings, engine=engine, broker=broker), shop.id)]
    relay.delay = 0.1
    child = subprocess.Popen([sys.executable, "-c", BATCHES, f"[{ids[:8]}, {ids[8:]}]"],
                             env=_child_env(settings, broker, relay.port), stdout=subprocess.PIPE, text=True)
    _kill_when(child, "started", lambda: len(relay.counts()) >= 5)
    killed_after = len(relay.counts())
    assert killed_after < 16  # really mid-batch
    # When its leases run out and the sweeper hands what it held to a living worker
    relay.delay = 0
    runtime = _after_the_leases(settings.model_copy(update={"smtp_port": relay.port}), broker, engine)
    with runtime.sessions() as fresh:
        swept = [message_id for message_id, _ in outbox.due_for_enqueue(fresh, runtime.clock.now())]
    deliver_batch(runtime, swept)
    runtime.close_channels()
    # Then everyone has the reminder, and at most the two mails in flight at the kill came twice
    _each_once_but(relay, session, people, in_flight=2)


def test_embedded_demo_killed_mid_delivery_hands_its_queue_over_at_restart(settings, session, relay, engine, tmp_path):  # type: ignore[no-untyped-def]
    # Given the embedded stack (in-process broker, two worker threads) killed while delivering
    from plugin.jobs.broker import build_broker

    shop, people = _daytime_shop(session, customers=30)
    relay.delay = 0.05
    env = {**_child_env(settings, None, relay.port), "BROKER_URL": "memory://"}
    child = subprocess.Popen([sys.executable, "-c", EMBEDDED, str(shop.id)], env=env, stdout=subprocess.PIPE, text=True)
    _kill_when(child, "started", lambda: len(relay.counts()) >= 4)
    assert len(relay.counts()) < 30
    # When it starts again: its queue's hand-offs are redone at once, before any sweep
    relay.delay = 0
    restarted = build_runtime(settings.model_copy(update={"smtp_port": relay.port}), broker=build_broker("memory://"),
                              engine=engine)
    worker = start_worker(restarted, threads=2)
    try:
        def unclaimed_left() -> int:
            with restarted.sessions() as fresh:
                return int(fresh.execute(select(func.count()).where(Message.status == MessageStatus.pending)).scalar() or 0)
        assert wait_until(lambda: unclaimed_left() == 0, timeout=30)
        # and what the dead process had claimed follows once its leases run out (the scheduler's heartbeat)
        restarted.clock = OffsetClock(outbox.LEASE + timedelta(seconds=1))
        assert Scheduler(restarted).beat()
        assert wait_until(lambda: len(relay.counts()) >= 30, timeout=30)
        time.sleep(0.5)
    finally:
        worker.stop()
        restarted.close()
    # Then everyone has the reminder, and at most one mail per thread came twice
    _each_once_but(relay, session, people, in_flight=2)


def test_embedded_demo_killed_before_settling_settles_what_it_sent_at_restart(settings, session, relay, engine, monkeypatch):  # type: ignore[no-untyped-def]
    # Given the embedded stack (SQLite, in-process queue) that sent a batch, journaled each mail,
    # and died before settling it: the rows are left in `sending`
    from plugin.delivery import batch
    from plugin.jobs.broker import build_broker

    if engine.dialect.name != "sqlite":
        pytest.skip("the journal is SQLite's mark store")
    shop, people = _daytime_shop(session, customers=3)
    first = build_runtime(settings.model_copy(update={"smtp_port": relay.port}), broker=build_broker("memory://"),
                          engine=engine)
    ids = [message_id for message_id, _ in run_shop_tick(first, shop.id)]

    def killed(*args: object) -> None:
        raise SystemExit("killed before the settle")

    with monkeypatch.context() as patched:
        patched.setattr(batch.outbox, "settle_many", killed)
        with pytest.raises(SystemExit):
            batch.deliver_batch(first, ids)
    first.close_channels()
    assert len(relay.counts()) == 3
    # When it starts again, well before the dead process's leases run out
    restarted = build_runtime(settings.model_copy(update={"smtp_port": relay.port}), broker=build_broker("memory://"),
                              engine=engine)
    worker = start_worker(restarted, threads=2)
    try:
        # Then what it sent is settled at once from the journal, and nobody gets it again
        session.expire_all()
        assert {m.status for m in session.execute(select(Message)).scalars()} == {MessageStatus.sent}
        time.sleep(0.5)
    finally:
        worker.stop()
        restarted.close()
    _each_once_but(relay, session, people, in_flight=0)

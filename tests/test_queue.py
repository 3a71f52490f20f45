"""The broker factory, and a delivery round trip through RabbitMQ when one is reachable."""
from __future__ import annotations

import os
import socket

import pytest
from dramatiq.brokers.stub import StubBroker

from plugin.jobs.broker import build_broker, is_in_process
from plugin.jobs.worker import start_worker
from plugin.runtime import build_runtime
from plugin.tasks import DELIVER_MESSAGES, SCENARIO_TICK
from tests.conftest import require_service
from tests.factories import idle_cart_shop
from tests.live import wait_until


def test_memory_url_gives_the_in_process_broker() -> None:
    broker = build_broker("memory://")
    assert isinstance(broker, StubBroker) and is_in_process(broker)


def test_unknown_broker_scheme_is_refused() -> None:
    with pytest.raises(ValueError, match="BROKER_URL"):
        build_broker("kafka://x")


def _reachable(url: str) -> bool:
    host_port = url.rsplit("@", 1)[-1].split("/", 1)[0]
    host, _, port = host_port.partition(":")
    try:
        socket.create_connection((host, int(port or 5672)), timeout=1).close()
    except OSError:
        return False
    return True


@pytest.mark.service
def test_reminders_are_delivered_through_rabbitmq(settings, engine, session, clock, catcher) -> None:  # type: ignore[no-untyped-def]
    url = os.environ.get("RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
    require_service("RabbitMQ", _reachable(url), f"{url} unreachable (set RABBITMQ_URL)")
    shop, people, _ = idle_cart_shop(session, clock.now(), customers=3)
    runtime = build_runtime(settings, engine=engine, clock=clock,
                            broker=build_broker(url))
    for queue in {SCENARIO_TICK.queue_name, DELIVER_MESSAGES.queue_name}:
        runtime.broker.flush(queue)
    worker = start_worker(runtime, threads=2)
    try:
        runtime.tasks.scenario_tick(shop.id)
        assert wait_until(lambda: len(catcher.snapshot()) >= 3, timeout=30)
    finally:
        worker.stop()
        runtime.close()
    assert sorted(m["To"].addresses[0].addr_spec for m in catcher.snapshot()) == sorted(p.email for p in people)


def test_redis_gives_a_dead_workers_unacked_messages_back_well_within_a_minute() -> None:
    # Dramatiq requeues a dead worker's prefetched and delayed messages once its heartbeat is
    # `heartbeat_timeout` old, in a maintenance pass that a command runs with this chance in a
    # million: at tens of commands a second, it comes within seconds of the timeout.
    broker = build_broker("redis://127.0.0.1:6379/0", namespace="okaeri-test-settings")  # connects lazily
    assert broker.heartbeat_timeout <= 20_000  # type: ignore[attr-defined]
    commands_until_maintenance = 1_000_000 / broker.maintenance_chance  # type: ignore[attr-defined]
    assert commands_until_maintenance <= 100

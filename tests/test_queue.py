"""The broker factory, and a delivery round trip through RabbitMQ when one is reachable."""
from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime

import pytest
from dramatiq.brokers.stub import StubBroker

from plugin.jobs.broker import build_broker, is_in_process, requeue_from_dead_workers
from plugin.jobs.worker import start_worker
from plugin.runtime import build_runtime
from plugin.tasks import DELIVER_MESSAGES, SCENARIO_TICK, Tasks
from tests.conftest import require_service
from tests.factories import idle_cart_shop
from tests.live import wait_until
from tests.services import reachable


def test_memory_url_gives_the_in_process_broker() -> None:
    broker = build_broker("memory://")
    assert isinstance(broker, StubBroker) and is_in_process(broker)


def test_unknown_broker_scheme_is_refused() -> None:
    with pytest.raises(ValueError, match="BROKER_URL"):
        build_broker("kafka://x")



@pytest.mark.service
def test_reminders_are_delivered_through_rabbitmq(settings, engine, session, clock, catcher) -> None:  # type: ignore[no-untyped-def]
    url = os.environ.get("RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
    require_service("RabbitMQ", reachable(url, 5672), f"{url} unreachable (set RABBITMQ_URL)")
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



@pytest.mark.service
def test_a_dead_redis_workers_messages_go_back_first_in_line_and_a_living_ones_stay() -> None:
    # Given a backlog on the delivery queue, a worker that fetched two messages and died, and a
    # living one that fetched one
    url = os.environ.get("BROKER_URL", "redis://127.0.0.1:6379/0")
    require_service("Redis", url.startswith("redis") and reachable(url),
                    f"{url} unreachable (set BROKER_URL=redis://…)")
    namespace = f"okaeri-test-{uuid.uuid4().hex[:8]}"
    dead, alive, producer = (build_broker(url, namespace=namespace) for _ in range(3))
    try:
        tasks = Tasks(producer)
        for n in range(1, 9):
            tasks.deliver([(n, datetime.now(UTC))], datetime.now(UTC))  # eight hand-offs: three fetched, a backlog
        taken = dead.do_fetch("delivery", 2)  # type: ignore[attr-defined]
        alive.do_fetch("delivery", 1)  # type: ignore[attr-defined]
        dead.client.zadd(f"{namespace}:__heartbeats__", {dead.broker_id: 0})  # type: ignore[attr-defined]
        # When the scheduler's heartbeat looks for dead workers
        moved = requeue_from_dead_workers(alive, ["delivery"], dead_for=30)
        # Then the dead one's two are first in the queue again; the living one's stays with it
        assert moved == 2
        head = alive.client.lrange(f"{namespace}:delivery", 0, 1)  # type: ignore[attr-defined]
        bodies = alive.client.hmget(f"{namespace}:delivery.msgs", head)  # type: ignore[attr-defined]
        assert sorted(bodies) == sorted(taken)
        assert alive.client.llen(f"{namespace}:delivery") == 7  # type: ignore[attr-defined]
    finally:
        producer.flush_all()
        for broker in (dead, alive, producer):
            broker.close()

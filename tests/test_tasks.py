"""Enqueueing needs only the broker; the actors, declared where work is consumed, then run it."""
from __future__ import annotations

from datetime import timedelta
from typing import Any

import dramatiq
from dramatiq.brokers.stub import StubBroker
from dramatiq.common import current_millis, dq_name
from sqlalchemy import Engine
from sqlmodel import Session

from plugin.clock import FrozenClock
from plugin.demo.mailcatcher import MailCatcher
from plugin.jobs.actors import register_actors
from plugin.jobs.broker import build_broker
from plugin.jobs.worker import start_worker
from plugin.runtime import Runtime, build_runtime
from plugin.settings import Settings
from plugin.tasks import DELIVER_MESSAGES, DELIVERY_BATCH, JOBS, SCENARIO_TICK, SYNC_SHOP, Tasks
from tests.factories import idle_cart_shop
from tests.live import wait_until


def _in_process_broker() -> StubBroker:
    broker = build_broker("memory://")
    assert isinstance(broker, StubBroker)
    return broker


def _queued(broker: StubBroker, queue_name: str) -> list[dramatiq.Message[Any]]:
    return [dramatiq.Message.decode(body) for body in list(broker.queues[queue_name].queue)]


def test_a_process_without_actors_enqueues_and_a_worker_with_actors_runs_it(settings: Settings, engine: Engine, session: Session,
                                                                           clock: FrozenClock, catcher: MailCatcher) -> None:
    # Given a runtime on an in-process broker on which no actor was declared
    shop, people, _ = idle_cart_shop(session, clock.now(), customers=3)
    assert shop.id is not None
    broker = _in_process_broker()
    runtime = build_runtime(settings, clock=clock, broker=broker, engine=engine)
    assert broker.actors == {}
    # When it enqueues a full sync and a scenario tick
    runtime.tasks.sync_shop(shop.id, full=True)
    runtime.tasks.scenario_tick(shop.id)
    # Then both wait in their queues, addressed by actor name
    assert [(m.actor_name, m.args) for m in _queued(broker, SYNC_SHOP.queue_name)] == [("sync_shop", (shop.id, True))]
    assert [(m.actor_name, m.args) for m in _queued(broker, SCENARIO_TICK.queue_name)] == [("scenario_tick", (shop.id,))]
    # And when a worker with the actors registered starts, the tick runs and its reminders are delivered
    broker.flush(SYNC_SHOP.queue_name)  # no platform answers here: the tick is what runs
    worker = start_worker(runtime, threads=2)
    try:
        assert wait_until(lambda: len(catcher.snapshot()) >= 3, timeout=30)
    finally:
        worker.stop()
        runtime.email.close()
    assert sorted(m["To"].addresses[0].addr_spec for m in catcher.snapshot()) == sorted(p.email for p in people)


def test_every_job_has_one_actor_on_its_queue(runtime: Runtime) -> None:
    actors = register_actors(runtime)
    assert {(a.actor_name, a.queue_name) for a in actors.values()} == {(j.actor_name, j.queue_name) for j in JOBS}


def test_messages_due_within_the_hand_off_horizon_go_to_the_broker_delayed_later_ones_stay_in_the_outbox(clock: FrozenClock) -> None:
    # Given a broker and two messages, one due in a minute and one in two hours
    broker = _in_process_broker()
    tasks = Tasks(broker)
    now = clock.now()
    # When both are handed to delivery
    before = current_millis()
    tasks.deliver([(1, now + timedelta(minutes=1)), (2, now + timedelta(hours=2))], now)
    after = current_millis()
    # Then only the first is enqueued, delayed by that minute; the second waits for the sweeper
    (delayed,) = _queued(broker, dq_name(DELIVER_MESSAGES.queue_name))
    assert delayed.args == ([1],)
    assert before + 60_000 <= delayed.options["eta"] <= after + 60_000
    assert _queued(broker, DELIVER_MESSAGES.queue_name) == []


def test_messages_due_now_are_enqueued_at_once_in_batches(clock: FrozenClock) -> None:
    broker = _in_process_broker()
    ids = list(range(1, 2 * DELIVERY_BATCH + 11))
    Tasks(broker).deliver([(i, clock.now() - timedelta(seconds=5)) for i in ids], clock.now())
    batches = [m.args[0] for m in _queued(broker, DELIVER_MESSAGES.queue_name)]
    assert [len(b) for b in batches] == [DELIVERY_BATCH, DELIVERY_BATCH, 10] and sum(batches, []) == ids

"""The scheduler is safe to run twice, and the sweeper finds what the broker lost."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from plugin.engine.tick import run_shop_tick
from plugin.jobs.actors import register_actors
from plugin.jobs.scheduler import HEARTBEAT, Scheduler
from plugin.jobs.scheduler import LEASE as SCHEDULER_LEASE
from plugin.storage import outbox
from plugin.storage.leases import acquire_lease
from plugin.storage.models import Message
from tests.factories import idle_cart_shop


def _queued(runtime) -> dict[str, int]:  # type: ignore[no-untyped-def]
    broker = runtime.broker
    if hasattr(broker, "queues") and not hasattr(broker, "client"):
        return {name: q.qsize() for name, q in broker.queues.items()}
    return {}


def test_only_one_of_two_schedulers_enqueues(runtime, session, clock) -> None:  # type: ignore[no-untyped-def]
    idle_cart_shop(session, clock.now())
    first, second = Scheduler(runtime, interval=60), Scheduler(runtime, interval=60)
    assert first.run_once() is True
    assert second.run_once() is False
    assert first.run_once() is True  # the holder renews


def test_lease_passes_on_when_the_holder_stops(runtime) -> None:  # type: ignore[no-untyped-def]
    assert acquire_lease(runtime, "scheduler", "a", timedelta(seconds=90))
    assert not acquire_lease(runtime, "scheduler", "b", timedelta(seconds=90))
    runtime.clock.advance(seconds=91)
    assert acquire_lease(runtime, "scheduler", "b", timedelta(seconds=90))


def test_round_enqueues_a_tick_for_each_shop_with_scenarios_on(runtime, session, clock) -> None:  # type: ignore[no-untyped-def]
    idle_cart_shop(session, clock.now())
    idle_cart_shop(session, clock.now())
    Scheduler(runtime).run_once()
    queued = _queued(runtime)
    if queued:  # the in-process broker can be inspected; Redis queues are checked by delivery tests
        assert queued["scenarios"] == 3  # two ticks and one sweep


def test_a_dead_scheduler_is_replaced_within_a_minute(runtime, session, clock) -> None:  # type: ignore[no-untyped-def]
    # Given a scheduler holding the lease, and a standby
    idle_cart_shop(session, clock.now())
    first, standby = Scheduler(runtime, interval=60), Scheduler(runtime, interval=60)
    assert first.run_once() is True
    # When the first dies (it renews nothing more) and less than a minute passes
    clock.advance(seconds=SCHEDULER_LEASE.total_seconds() + 1)
    # Then the standby has taken over, well within the minute
    assert SCHEDULER_LEASE + timedelta(seconds=HEARTBEAT) < timedelta(seconds=60)
    assert standby.run_once() is True
    assert first.run_once() is False


def test_a_living_scheduler_keeps_its_lease_with_its_heartbeat(runtime, session, clock) -> None:  # type: ignore[no-untyped-def]
    first, standby = Scheduler(runtime, interval=600), Scheduler(runtime, interval=600)
    assert first.run_once() is True
    for _ in range(6):  # a minute and a half of heartbeats, no full round
        clock.advance(seconds=HEARTBEAT)
        assert first.beat() is True
        assert standby.beat() is False


def test_a_scheduler_that_stops_hands_its_lease_over_at_once(runtime) -> None:  # type: ignore[no-untyped-def]
    first, standby = Scheduler(runtime, interval=60), Scheduler(runtime, interval=60)
    assert first.run_once() is True
    first.stop()
    assert standby.run_once() is True


def test_the_heartbeat_hands_a_dead_workers_claims_over(runtime, session, clock) -> None:  # type: ignore[no-untyped-def]
    # Given reminders claimed by a worker that died
    shop, _, _ = idle_cart_shop(session, clock.now(), customers=2)
    ids = [message_id for message_id, _ in run_shop_tick(runtime, shop.id)]
    outbox.claim_many(session, ids, clock.now())
    scheduler = Scheduler(runtime, interval=600)
    assert scheduler.run_once() is True
    # When their leases have run out and the scheduler's heartbeat comes (long before its next round)
    clock.advance(seconds=outbox.LEASE.total_seconds() + 1)
    assert scheduler.beat() is True
    # Then they are handed to delivery again, on the queue no backlog fills
    with runtime.sessions() as fresh:
        enqueued = set(fresh.execute(select(Message.enqueued_at).where(Message.id.in_(ids))).scalars())  # type: ignore[union-attr]
    assert enqueued == {clock.now().replace(tzinfo=None)} or enqueued == {clock.now()}
    if _queued(runtime):
        assert _queued(runtime)["redelivery"] == 1


def _ticks_sent(runtime, monkeypatch) -> list[int]:  # type: ignore[no-untyped-def]
    sent: list[int] = []
    monkeypatch.setattr(runtime.tasks, "scenario_tick", sent.append)
    return sent


def test_a_round_never_queues_a_shop_whose_tick_is_still_queued(runtime, session, clock, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # Given two shops, and a round that queued both their ticks (not run yet: a long backlog)
    first, _, _ = idle_cart_shop(session, clock.now())
    second, _, _ = idle_cart_shop(session, clock.now())
    sent = _ticks_sent(runtime, monkeypatch)
    scheduler = Scheduler(runtime, interval=60)
    scheduler.run_once()
    assert sorted(sent) == sorted([first.id, second.id])
    # When the next round comes before they ran, nothing is queued twice
    clock.advance(seconds=60)
    scheduler.run_once()
    assert len(sent) == 2
    # and once the first shop's tick has run, only it is queued again
    actor = register_actors(runtime)["scenario_tick"]
    actor.fn(first.id)
    clock.advance(seconds=60)
    scheduler.run_once()
    assert sent[2:] == [first.id]


def test_a_tick_mark_left_by_a_lost_job_expires(runtime, session, clock, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from plugin.storage.tick_queue import STALE

    shop, _, _ = idle_cart_shop(session, clock.now())
    sent = _ticks_sent(runtime, monkeypatch)
    scheduler = Scheduler(runtime, interval=60)
    scheduler.run_once()
    # a worker died with the job; the mark outlives its time limit
    clock.advance(seconds=STALE.total_seconds() + 1)
    scheduler.run_once()
    assert sent == [shop.id, shop.id]


def test_a_failed_tick_lets_the_next_round_queue_the_shop(runtime, session, clock, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import plugin.jobs.work as work

    shop, _, _ = idle_cart_shop(session, clock.now())
    sent = _ticks_sent(runtime, monkeypatch)
    scheduler = Scheduler(runtime, interval=60)
    scheduler.run_once()

    def broken(_runtime, _shop_id):  # type: ignore[no-untyped-def]
        raise RuntimeError("database went away")

    monkeypatch.setattr(work, "tick_shop", broken)
    with pytest.raises(RuntimeError):
        register_actors(runtime)["scenario_tick"].fn(shop.id)
    clock.advance(seconds=60)
    scheduler.run_once()
    assert sent == [shop.id, shop.id]

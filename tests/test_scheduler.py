"""The scheduler is safe to run twice, and the sweeper finds what the broker lost."""
from __future__ import annotations

from datetime import timedelta

from plugin.jobs.scheduler import Scheduler
from plugin.storage.leases import acquire_lease
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

"""Shared rate limits reserved in batches (issue 18 item 3): a busy key costs Redis a round trip now and
then instead of one a request, yet the processes together never admit more than the limit, and a
quiet visitor is still counted hit by hit."""
from __future__ import annotations

import asyncio
import uuid

import pytest
from limits import parse
from limits.aio.strategies import SlidingWindowCounterRateLimiter

from plugin.web.limit_grants import GRANT_LIFE, MAX_SHARE, Allowances
from plugin.web.ratelimit import _redis_storage
from tests.conftest import require_service
from tests.services import reachable, redis_url


class SharedCount:
    """A limiter that counts exactly, as Redis would for every process (no window: the tests stay inside one)."""

    def __init__(self) -> None:
        self.used: dict[str, int] = {}
        self.round_trips = 0

    async def hit(self, item, *identifiers: str, cost: int = 1) -> bool:  # type: ignore[no-untyped-def]
        self.round_trips += 1
        await asyncio.sleep(0)  # a round trip lets other requests of the loop run
        key = item.key_for(*identifiers)
        if self.used.get(key, 0) + cost > item.amount:
            return False
        self.used[key] = self.used.get(key, 0) + cost
        return True


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _admitted(allowances: list[Allowances[SharedCount]], clock: Clock, item, hits: int, every: float) -> int:  # type: ignore[no-untyped-def]
    async def run() -> int:
        admitted = 0
        for n in range(hits):
            clock.now += every
            admitted += await allowances[n % len(allowances)].hit(item, "visitor")
        return admitted
    return asyncio.run(run())


def test_a_busy_key_costs_the_store_a_round_trip_now_and_then_not_one_a_request() -> None:
    store, clock = SharedCount(), Clock()
    item = parse("1000000/minute")
    admitted = _admitted([Allowances(store, clock)], clock, item, hits=5000, every=0.001)  # 1,000 a second
    assert admitted == 5000
    assert store.round_trips < 5000 / 20
    assert store.used[item.key_for("visitor")] >= admitted  # every admitted hit was counted first


def test_two_processes_together_never_admit_more_than_the_limit_and_waste_little_of_it() -> None:
    store, clock = SharedCount(), Clock()
    item = parse("2000/minute")
    processes = [Allowances(store, clock), Allowances(store, clock)]
    admitted = _admitted(processes, clock, item, hits=6000, every=0.0005)
    assert admitted <= 2000
    assert admitted >= 2000 - 2 * (2000 // MAX_SHARE)  # at most one reservation each left unspent


def test_a_quiet_visitor_is_counted_hit_by_hit_and_refused_exactly_at_the_limit() -> None:
    store, clock = SharedCount(), Clock()
    item = parse("5/hour")
    allowances = Allowances(store, clock)

    async def run() -> list[bool]:
        answers = []
        for _ in range(7):
            clock.now += 2.0
            answers.append(await allowances.hit(item, "visitor"))
        return answers
    assert asyncio.run(run()) == [True] * 5 + [False] * 2
    assert store.round_trips == 7


def test_reserved_hits_left_unspent_expire_rather_than_carry_over() -> None:
    store, clock = SharedCount(), Clock()
    item = parse("100000/minute")
    allowances = Allowances(store, clock)
    _admitted([allowances], clock, item, hits=2000, every=0.001)
    trips = store.round_trips
    clock.now += GRANT_LIFE + 0.01  # a pause longer than a reservation's life
    assert asyncio.run(allowances.hit(item, "visitor"))
    assert store.round_trips == trips + 1


def test_requests_arriving_together_share_one_reservation() -> None:
    store, clock = SharedCount(), Clock()
    item = parse("1000000/minute")
    allowances = Allowances(store, clock)
    _admitted([allowances], clock, item, hits=1000, every=0.001)  # the key is busy
    trips = store.round_trips
    clock.now += 1.0

    async def burst() -> list[bool]:
        return list(await asyncio.gather(*(allowances.hit(item, "visitor") for _ in range(100))))
    assert all(asyncio.run(burst()))
    assert store.round_trips - trips <= 2


def test_a_reservation_that_does_not_fit_falls_back_to_single_hits() -> None:
    store, clock = SharedCount(), Clock()
    item = parse("1000/minute")
    allowances = Allowances(store, clock)
    store.used[item.key_for("visitor")] = 995  # the rest of the window was spent elsewhere
    _admitted([allowances], clock, item, hits=100, every=0.001)
    assert store.used[item.key_for("visitor")] == 1000  # the last five were counted one by one


@pytest.mark.service
def test_two_processes_share_a_redis_limit_exactly_under_a_burst() -> None:
    url = redis_url()
    require_service("Redis", reachable(url), f"{url} unreachable (set OKAERI_RATE_LIMIT_URL or BROKER_URL)")
    item = parse("500/hour")
    prefix = f"okaeri-test-{uuid.uuid4().hex[:8]}:ratelimit"

    async def run() -> int:
        processes = [Allowances(SlidingWindowCounterRateLimiter(_redis_storage(url, prefix))) for _ in range(2)]
        connections = asyncio.Semaphore(32)  # as many requests at once as a web server's connections

        async def request(n: int) -> bool:
            async with connections:
                return await processes[n % 2].hit(item, "visitor")
        answers = await asyncio.gather(*(request(n) for n in range(1500)))
        for process in processes:
            await process.limiter.storage.reset()
        return sum(answers)
    admitted = asyncio.run(run())
    assert 500 - 2 * (500 // MAX_SHARE) <= admitted <= 500

"""One request budget per ColorMe token: 120 a minute across every process that spends it.

The sandbox enforces the budget, time-scaled (a "minute" is a second or two), and stamps every
call on arrival; the tests count calls per window as the sandbox saw them, never the client's time.
"""
from __future__ import annotations

import secrets
import subprocess
import sys
import textwrap
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import httpx
import pytest
import respx
from fastapi.testclient import TestClient

from connectors.colorme import PLATFORM
from connectors.colorme.client import ColorMeClient
from connectors.errors import RateLimited
from connectors.ratelimit import MemoryBudget, RedisBudget, budget_for, token_key
from plugin.demo.mailcatcher import free_port
from plugin.demo.sandbox.app import SandboxConfig, create_sandbox_app
from plugin.demo.sandbox.ratelimit import RateLimit, max_in_window, per_window
from plugin.demo.sandbox.seed import generate
from plugin.runtime import build_runtime
from plugin.settings import Settings
from tests.conftest import require_service
from tests.live import serve
from tests.services import reachable, redis_url

API = "https://api.shop-pro.jp"
NOW = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)


class FakeTime:
    """A clock that moves only when someone sleeps."""

    def __init__(self) -> None:
        self.now: float = 0.0
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def _budget(clock: FakeTime, calls: int = 120) -> MemoryBudget:
    return MemoryBudget(calls, 60.0, now=lambda: clock.now, sleep=clock.sleep)


@contextmanager
def sandbox(limit: RateLimit, tokens: set[str]) -> Iterator[str]:
    """The sandbox shop on a loopback port, enforcing `limit`; yields its API base."""
    port = free_port()
    data = generate(7, datetime.now(UTC), f"http://127.0.0.1:{port}/store", customers=5, products=5)
    app = create_sandbox_app(data, SandboxConfig("http://127.0.0.1:9", "cid", "cs", "wh", tokens=tokens, rate_limit=limit))
    with serve(app, port):
        yield f"http://127.0.0.1:{port}"


def _seen(limit: RateLimit, token: str) -> list[float]:
    """Every call the sandbox saw with the token, accepted or refused."""
    return limit.accepted.get(token, []) + limit.refused.get(token, [])


# --- the budget itself -----------------------------------------------------------------------

def test_a_slot_frees_one_window_after_the_answer_not_after_the_call() -> None:
    # Given a budget of 2 calls a minute, and a first call that takes 5 s to answer
    clock = FakeTime()
    budget = _budget(clock, calls=2)
    slow = budget.reserve()
    clock.now = 5.0
    budget.settle(slow)
    budget.settle(budget.reserve())
    # When a third call asks for a slot
    budget.reserve()
    # Then it waited until a minute after the slow call's answer (the platform saw the call late)
    assert clock.slept == [60.0] and clock.now == 65.0


def test_a_full_budget_blocks_only_as_long_as_it_was_told_then_says_when_to_come_back() -> None:
    clock = FakeTime()
    budget = _budget(clock, calls=1)
    budget.settle(budget.reserve())
    with pytest.raises(RateLimited) as refused:
        budget.reserve(max_wait=10.0)
    assert refused.value.retry_after == 60.0 and clock.slept == []  # no sleep it could not finish


def test_the_budget_key_is_derived_from_the_token_and_does_not_contain_it() -> None:
    token = secrets.token_hex(32)
    key = token_key("colorme", token)
    assert key == token_key("colorme", token) and key != token_key("colorme", token + "x")
    assert token not in key and token[:16] not in key and key.startswith("colorme:")


def test_clients_opened_for_one_token_in_one_process_share_its_budget() -> None:
    token = secrets.token_hex(16)
    platform = PLATFORM.configured({"COLORME_API_BASE": API})
    first, second = (platform.open_connector(token, NOW).client for _ in range(2))
    assert first.budget is second.budget
    assert platform.open_connector(secrets.token_hex(16), NOW).client.budget is not first.budget


def test_the_runtime_hands_its_rate_limit_store_to_the_platforms(settings: Settings, engine) -> None:  # type: ignore[no-untyped-def]
    settings = settings.model_copy(update={"rate_limit_url": "redis://127.0.0.1:6379/3"})
    runtime = build_runtime(settings, engine=engine)
    config = runtime.platforms.get("colorme").config
    runtime.close_channels()
    assert (config.rate_limit_store, config.redis_namespace) == ("redis://127.0.0.1:6379/3", settings.redis_namespace)


# --- 429 and Retry-After ---------------------------------------------------------------------

@respx.mock
def test_a_429_waits_retry_after_and_so_does_every_client_of_the_same_budget() -> None:
    # Given two clients spending one budget, and ColorMe answering the first call with 429
    clock = FakeTime()
    budget = _budget(clock)
    first, second = (ColorMeClient(API, "token", budget=budget, sleep=clock.sleep) for _ in range(2))
    calls: list[float] = []

    def answer(request: httpx.Request) -> httpx.Response:
        calls.append(clock.now)
        if len(calls) == 1:
            return httpx.Response(429, headers={"Retry-After": "7"},
                                  json={"errors": [{"code": 429000, "message": "too many", "status": 429}]})
        return httpx.Response(200, json={"shop": {"id": "PA01234567"}})

    respx.get(f"{API}/v1/shop.json").mock(side_effect=answer)
    # When the first client is refused and retries, and the second calls afterwards
    assert first.get("/v1/shop.json")["shop"]["id"] == "PA01234567"
    second.get("/v1/shop.json")
    # Then the retry came 7 s after the refusal, and the second client did not jump the pause
    assert calls == [0.0, 7.0, 7.0] and clock.slept == [7.0]


@respx.mock
def test_a_retry_after_longer_than_a_thread_should_block_is_handed_to_the_job() -> None:
    clock = FakeTime()
    respx.get(f"{API}/v1/shop.json").mock(return_value=httpx.Response(429, headers={"Retry-After": "120"}))
    client = ColorMeClient(API, "token", budget=_budget(clock), sleep=clock.sleep)
    with pytest.raises(RateLimited) as refused:
        client.get("/v1/shop.json")
    assert refused.value.retry_after == 120.0 and clock.slept == []
    with pytest.raises(RateLimited):  # the pause holds for the budget's other calls too, without blocking them
        client.get("/v1/categories.json")


def test_the_sandbox_answers_over_budget_with_colormes_error_shape_and_retry_after() -> None:
    # Given a sandbox allowing 2 calls per scaled minute of 30 s
    limit = RateLimit(calls=2, time_scale=2.0)
    data = generate(7, datetime.now(UTC), "http://shop.test", customers=5, products=5)
    client = TestClient(create_sandbox_app(data, SandboxConfig("http://okaeri.test", "cid", "cs", "wh",
                                                                   tokens={"good", "other"}, rate_limit=limit)))
    # When one token calls three times and another once
    answers = [client.get("/v1/shop.json", headers={"Authorization": f"Bearer {t}"}) for t in ("good", "good", "good", "other")]
    # Then the third is refused as ColorMe shapes errors, and the other token has its own budget
    assert [a.status_code for a in answers] == [200, 200, 429, 200]
    refused = answers[2]
    assert refused.json() == {"errors": [{"code": 429000, "message": refused.json()["errors"][0]["message"], "status": 429}]}
    assert 1 <= int(refused.headers["Retry-After"]) <= 30
    assert len(limit.accepted["good"]) == 2 and len(limit.refused["good"]) == 1


def test_a_client_that_overspends_waits_retry_after_before_its_next_call() -> None:
    # Given a client with a budget of its own far above the sandbox's 10 calls per scaled second
    limit = RateLimit(calls=10, time_scale=60.0)
    token = secrets.token_hex(16)
    with sandbox(limit, {token}) as base:
        client = ColorMeClient(base, token, requests_per_minute=1000, window=1.0)
        # When it makes 25 calls
        for _ in range(25):
            client.get("/v1/shop.json")
        client.close()
    # Then every call went through, and each refusal was followed by a pause of at least Retry-After (1 s)
    accepted, refused = limit.accepted[token], limit.refused.get(token, [])
    assert len(accepted) == 25 and refused
    for stamp in refused:
        later = [a for a in accepted if a > stamp]
        assert not later or later[0] - stamp >= 1.0
    assert max_in_window(accepted, limit.window) <= 10


# --- the budget as the sandbox sees it -------------------------------------------------------

def test_threads_of_one_process_stay_under_120_a_minute_in_process() -> None:
    # Given a sandbox enforcing 120 calls per scaled minute of 1 s, and 3 threads with one token
    limit = RateLimit(calls=120, time_scale=60.0)
    token = secrets.token_hex(16)
    with sandbox(limit, {token}) as base:
        platform = PLATFORM.configured({"COLORME_API_BASE": base, "COLORME_RATE_WINDOW_SECONDS": "1"})

        def work() -> None:
            connector = platform.open_connector(token, NOW)
            for _ in range(100):
                connector.client.get("/v1/shop.json")
            connector.close()

        # When they make 300 calls between them
        threads = [threading.Thread(target=work) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    # Then the sandbox never saw more than 120 in any window, and refused none
    seen = _seen(limit, token)
    assert len(seen) == 300 and not limit.refused.get(token)
    assert max_in_window(seen, limit.window) <= 120 and max(per_window(seen, limit.window)) <= 120



WORKER = textwrap.dedent("""
    import sys
    from datetime import UTC, datetime
    from connectors.colorme import PLATFORM
    base, token, store, namespace, calls = sys.argv[1:6]
    platform = PLATFORM.configured({"COLORME_API_BASE": base, "COLORME_RATE_WINDOW_SECONDS": "2",
                                    "OKAERI_RATE_LIMIT_STORE": store, "OKAERI_REDIS_NAMESPACE": namespace})
    connector = platform.open_connector(token, datetime.now(UTC))
    print("ready", flush=True)
    sys.stdin.readline()
    for _ in range(int(calls)):
        connector.client.get("/v1/shop.json")
    connector.close()
""")


@pytest.mark.service
@pytest.mark.slow
def test_two_worker_processes_sharing_one_token_stay_under_120_a_minute_through_redis() -> None:
    url = redis_url()
    require_service("Redis", reachable(url), f"{url} unreachable (set OKAERI_RATE_LIMIT_URL or BROKER_URL=redis://…)")
    # Given a sandbox enforcing 120 calls per scaled minute of 2 s, and two worker processes with one token
    limit = RateLimit(calls=120, time_scale=30.0)
    token, namespace = secrets.token_hex(16), f"okaeri-test-{uuid.uuid4().hex[:8]}"
    with sandbox(limit, {token}) as base:
        workers = [subprocess.Popen([sys.executable, "-c", WORKER, base, token, url, namespace, "180"],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) for _ in range(2)]
        for worker in workers:  # both ready before either starts: they compete for the budget
            assert worker.stdout is not None and worker.stdout.readline().strip() == "ready"
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.write("go\n")
            worker.stdin.flush()
        codes = [worker.wait(120) for worker in workers]
    # Then between them the sandbox never saw more than 120 in any window, and refused none
    seen = _seen(limit, token)
    assert codes == [0, 0] and len(seen) == 360 and not limit.refused.get(token)
    assert max_in_window(seen, limit.window) <= 120
    # and the token is nowhere in Redis: only its digest names the budget
    import redis

    keys = [k.decode() for k in redis.Redis.from_url(url).keys(f"{namespace}:*")]
    assert keys and all(token not in k for k in keys)
    assert all(token_key("colorme", token) in k for k in keys)


@pytest.mark.service
def test_a_pause_set_by_one_process_holds_for_another_through_redis() -> None:
    url = redis_url()
    require_service("Redis", reachable(url), f"{url} unreachable (set OKAERI_RATE_LIMIT_URL or BROKER_URL=redis://…)")
    import redis

    key = f"okaeri-test-{uuid.uuid4().hex[:8]}:budget:colorme:x"
    # Given two budgets on one key, as two processes hold them
    first = RedisBudget(redis.Redis.from_url(url), key, 120, 60.0)
    second = RedisBudget(redis.Redis.from_url(url), key, 120, 60.0)
    # When the first is told to pause 2 s (a 429's Retry-After)
    first.pause(2.0)
    # Then the second gets no slot and is told to wait out the rest of the pause
    ticket, wait = second._try_reserve()
    assert ticket is None and 1.0 < wait <= 2.0
    with pytest.raises(RateLimited):
        second.reserve(max_wait=0.5)


def test_budgets_are_one_per_store_and_key_in_a_process() -> None:
    key = f"colorme:{uuid.uuid4().hex}"
    assert budget_for("memory://", key, 120, 60.0) is budget_for("memory://", key, 120, 60.0)
    assert isinstance(budget_for("memory://", key, 120, 60.0), MemoryBudget)

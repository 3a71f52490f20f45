"""Request budgets: at most N calls to a platform in any window of W seconds, per access token.

    RequestBudget         the interface: reserve a slot, settle it when the answer is in, pause
    ├── MemoryBudget      one process: a lock and a dict (SlidingWindowLimiter is its old name)
    └── RedisBudget       every process sharing a Redis: one Lua script per step, Redis's clock

A slot is held from its reservation until `settle` stamps it with the time the answer came back,
so a slot frees W seconds after the platform saw the call, however long the call was on the wire:
the platform can never count N + 1 calls in one of its windows. A 429's Retry-After is a `pause`
every holder of the same budget waits out. `budget_for` hands out one budget per (store, key) in
a process; the key is derived from the token (`token_key`), which is never stored.
"""
from __future__ import annotations

import hashlib
import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from connectors import metrics
from connectors.errors import RateLimited

__all__ = ["RequestBudget", "MemoryBudget", "RedisBudget", "SlidingWindowLimiter", "budget_for", "token_key"]

log = logging.getLogger("okaeri.ratelimit")
LEASE = 60.0  # seconds a reserved slot counts as "just used" if its holder never settles it (crashed)
REDIS_TIMEOUT = 2.0
# Redis stamps with its wall clock, the platform counts with its own: 0.1 % longer windows cover
# the most an NTP slew can make the two disagree (0.05 %).
CLOCK_MARGIN = 0.001


def token_key(platform: str, access_token: str) -> str:
    """A budget key for a token: a SHA-256 digest (tokens are long random strings, so it cannot be reversed)."""
    digest = hashlib.sha256(f"okaeri-request-budget:{platform}:{access_token}".encode()).hexdigest()
    return f"{platform}:{digest[:32]}"


class RequestBudget:
    """N calls in any window of W seconds, shared by everyone holding the same budget."""

    def __init__(self, calls: int, window: float, *, sleep: Callable[[float], None] = time.sleep) -> None:
        if calls < 1 or window <= 0:
            raise ValueError("a budget needs calls >= 1 and a window > 0")
        self.calls, self.window, self._sleep = calls, window, sleep
        self.platform = ""  # the metrics label; `budget_for` sets it from the key

    def reserve(self, max_wait: float = float("inf")) -> str:
        """Wait for a slot and hold it; return its ticket for `settle`.

        Parameters:
          max_wait(float): Seconds this call may block in all.

        Raises:
          RateLimited: If the next slot (or the end of a pause) is further away than `max_wait` allows;
            its `retry_after` says when to try again.
        """
        waited = 0.0
        while True:
            ticket, wait = self._try_reserve()
            if ticket is not None:
                return ticket
            if waited + wait > max_wait:
                raise RateLimited("request budget spent", retry_after=wait)
            self._sleep(wait)  # the exact time until a slot frees: no polling loop
            waited += wait
            metrics.waited(self.platform, wait)

    def settle(self, ticket: str) -> None:
        """The answer to the call holding `ticket` is in: its slot frees one window from now."""
        raise NotImplementedError

    def pause(self, seconds: float) -> None:
        """Nobody holding this budget calls for `seconds` (a 429's Retry-After); a longer pause wins."""
        raise NotImplementedError

    def _try_reserve(self) -> tuple[str | None, float]:
        """A ticket, or None and the seconds until one may be free."""
        raise NotImplementedError


class MemoryBudget(RequestBudget):
    """The budget of one process (all its threads)."""

    def __init__(self, calls: int, window: float, *, now: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        super().__init__(calls, window, sleep=sleep)
        self._now = now
        self._slots: dict[str, float] = {}  # ticket → when its slot started counting (future while in flight)
        self._resume = 0.0
        self._lock = threading.Lock()

    def _try_reserve(self) -> tuple[str | None, float]:
        with self._lock:
            now = self._now()
            if self._resume > now:
                return None, self._resume - now
            for ticket in [t for t, stamp in self._slots.items() if stamp <= now - self.window]:
                del self._slots[ticket]
            if len(self._slots) < self.calls:
                ticket = uuid.uuid4().hex
                self._slots[ticket] = now + LEASE
                return ticket, 0.0
            stamp = sorted(self._slots.values())[len(self._slots) - self.calls]
            return None, self.window if stamp > now else stamp + self.window - now

    def settle(self, ticket: str) -> None:
        with self._lock:
            if ticket in self._slots:
                self._slots[ticket] = self._now()

    def pause(self, seconds: float) -> None:
        with self._lock:
            self._resume = max(self._resume, self._now() + seconds)


class SlidingWindowLimiter(MemoryBudget):
    """The one-call form: `acquire()` waits for a slot and counts it from now."""

    def acquire(self) -> float:
        """Wait for a slot; return the seconds waited."""
        start = self._now()
        self.settle(self.reserve())
        return self._now() - start


# KEYS: the slots (a sorted set: ticket → when it started counting), the pause (resume time).
# ARGV: calls, window, lease, ticket. Answers {ticket or "", seconds to wait}, as strings (Lua
# numbers would be cut to integers). Redis's clock, so processes on different hosts agree.
_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local calls, window, lease = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local resume = tonumber(redis.call('GET', KEYS[2]) or '0')
if resume > now then return {'', tostring(resume - now)} end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local used = redis.call('ZCARD', KEYS[1])
if used < calls then
  redis.call('ZADD', KEYS[1], now + lease, ARGV[4])
  redis.call('PEXPIRE', KEYS[1], math.ceil((window + lease) * 1000))
  return {ARGV[4], '0'}
end
local stamp = tonumber(redis.call('ZRANGE', KEYS[1], used - calls, used - calls, 'WITHSCORES')[2])
if stamp > now then return {'', tostring(window)} end
return {'', tostring(stamp + window - now)}
"""
_SETTLE = """
local t = redis.call('TIME')
redis.call('ZADD', KEYS[1], 'XX', tonumber(t[1]) + tonumber(t[2]) / 1000000, ARGV[1])
"""
_PAUSE = """
local t = redis.call('TIME')
local resume = tonumber(t[1]) + tonumber(t[2]) / 1000000 + tonumber(ARGV[1])
if resume > tonumber(redis.call('GET', KEYS[1]) or '0') then
  redis.call('SET', KEYS[1], tostring(resume), 'PX', math.ceil(tonumber(ARGV[1]) * 1000))
end
"""


class RedisBudget(RequestBudget):
    """A budget every process using the same Redis and key shares.

    Should Redis fail, the process falls back to its own MemoryBudget (logged) rather than stop
    syncing: the platform, not Redis, is what the budget protects.
    """

    def __init__(self, client: Any, key: str, calls: int, window: float, *,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        super().__init__(calls, window, sleep=sleep)
        self._keys = [f"{key}:slots", f"{key}:pause"]
        self._reserve = client.register_script(_RESERVE)
        self._settle = client.register_script(_SETTLE)
        self._pause = client.register_script(_PAUSE)
        self._fallback = MemoryBudget(calls, window, sleep=sleep)

    def _try_reserve(self) -> tuple[str | None, float]:
        try:
            ticket, wait = self._reserve(keys=self._keys, args=[self.calls, self.window * (1 + CLOCK_MARGIN), LEASE,
                                                                    uuid.uuid4().hex])
        except (OSError, _redis_errors()) as exc:
            log.warning("okaeri.ratelimit.redis-unavailable %s", exc)
            return self._fallback._try_reserve()
        return (_text(ticket) or None), float(_text(wait))

    def settle(self, ticket: str) -> None:
        self._fallback.settle(ticket)
        try:
            self._settle(keys=self._keys[:1], args=[ticket])
        except (OSError, _redis_errors()) as exc:
            log.warning("okaeri.ratelimit.redis-unavailable %s", exc)

    def pause(self, seconds: float) -> None:
        self._fallback.pause(seconds)
        try:
            self._pause(keys=self._keys[1:], args=[seconds])
        except (OSError, _redis_errors()) as exc:
            log.warning("okaeri.ratelimit.redis-unavailable %s", exc)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _redis_errors() -> type[Exception]:
    import redis

    return redis.RedisError


_budgets: dict[tuple[str, str, str, int, float], RequestBudget] = {}
_clients: dict[str, Any] = {}
_registry_lock = threading.Lock()


def budget_for(store: str, key: str, calls: int, window: float, *, namespace: str = "okaeri") -> RequestBudget:
    """This process's budget for `key`: in Redis when `store` is a redis:// URL, in memory otherwise."""
    with _registry_lock:
        found = _budgets.get((store, namespace, key, calls, window))
        if found is None:
            if store.startswith(("redis:", "rediss:")):
                found = RedisBudget(_redis(store), f"{namespace}:budget:{key}", calls, window)
            else:
                found = MemoryBudget(calls, window)
            found.platform = key.split(":", 1)[0] if ":" in key else ""
            _budgets[(store, namespace, key, calls, window)] = found
        return found


def _redis(url: str) -> Any:
    if url not in _clients:
        import redis

        _clients[url] = redis.Redis.from_url(url, socket_timeout=REDIS_TIMEOUT, socket_connect_timeout=REDIS_TIMEOUT)
    return _clients[url]

"""Rate limits on the public endpoints, as FastAPI dependencies: storefront events per visitor and per
shop (its event key), tracking links and unsubscribe per client address.

Counted with the `limits` library in Redis when Redis is configured (OKAERI_RATE_LIMIT_URL, or a
redis:// BROKER_URL), so every web process shares one count; in this process's memory otherwise.
Redis is asked from the event loop (`limits.aio`, redis-py's asyncio client): a thread-pool hop
per beacon cost more CPU than the count itself; and a busy key's hits are reserved a few at a time
(plugin.web.limit_grants), so a beacon rarely waits for Redis at all. A limit that is spent raises RateLimitExceeded: a
429 with Retry-After (plugin.web.errors).
"""
from __future__ import annotations

import asyncio
import ipaddress
import logging
import math
import re
import time
import weakref
from collections.abc import Mapping
from dataclasses import dataclass

from fastapi import Depends, Request
from limits import RateLimitItem, parse_many
from limits.aio.storage import RedisStorage as AsyncRedisStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter as AsyncSlidingWindowCounter
from limits.errors import StorageError
from limits.storage import storage_from_string
from limits.strategies import SlidingWindowCounterRateLimiter
from redis.asyncio import ConnectionPool

from plugin import metrics
from plugin.settings import Settings
from plugin.web.errors import RateLimitExceeded
from plugin.web.limit_grants import Allowances

__all__ = ["RateLimits", "StorefrontEventLimit", "TrackingLimit", "UnsubscribeLimit", "client_address"]

log = logging.getLogger("okaeri.web.ratelimit")
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
REDIS_TIMEOUT = 0.5  # seconds; a slow Redis must not hold a visitor's request


@dataclass(frozen=True)
class _Limits:
    events_shop: list[RateLimitItem]
    events_visitor: list[RateLimitItem]
    tracking: list[RateLimitItem]
    unsubscribe: list[RateLimitItem]
    raised_events: list[RateLimitItem]


class RateLimits:
    """The configured limits and the store that counts them (one per app)."""

    def __init__(self, settings: Settings) -> None:
        self.limits = _Limits(
            events_shop=parse_many(settings.rate_limit_events_shop),
            events_visitor=parse_many(settings.rate_limit_events_visitor),
            tracking=parse_many(settings.rate_limit_tracking),
            unsubscribe=parse_many(settings.rate_limit_unsubscribe),
            raised_events=parse_many(settings.rate_limit_raised_events),
        )
        self.raised_keys = settings.rate_limit_raised_key_set
        self.trusted_proxies = settings.trusted_proxy_networks
        self.url = settings.rate_limit_store
        self.key_prefix = f"{settings.redis_namespace}:ratelimit"
        self.in_memory = self.url.startswith("memory")
        # A sliding window counter: two counters a key, no burst at a window's edge.
        self.limiter = SlidingWindowCounterRateLimiter(storage_from_string("memory://"))
        # Redis: one asyncio client per event loop (its connections belong to the loop that opened them),
        # on a pool of our own so that the app's shutdown can close it (`aclose`).
        self._redis: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Allowances[AsyncSlidingWindowCounter]] = \
            weakref.WeakKeyDictionary()
        self._pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, ConnectionPool] = weakref.WeakKeyDictionary()

    async def hit(self, items: list[RateLimitItem], *identifiers: str, headers: Mapping[str, str] | None = None) -> None:
        """Count one request against every item; raise RateLimitExceeded when one is spent. A store
        that is down lets the request through (logged)."""
        shared = None if self.in_memory else self._shared()
        for item in items:
            try:
                allowed = self.limiter.hit(item, *identifiers) if shared is None else await shared.hit(item, *identifiers)
            except (StorageError, OSError) as exc:
                log.warning("okaeri.ratelimit.store-unavailable %s", exc)
                return
            if not allowed:
                limiter = None if shared is None else shared.limiter
                raise RateLimitExceeded(await self._retry_after(limiter, item, identifiers), headers=headers)

    def _shared(self) -> Allowances[AsyncSlidingWindowCounter]:
        loop = asyncio.get_running_loop()
        shared = self._redis.get(loop)
        if shared is None:
            pool = self._pools[loop] = _redis_pool(self.url, self.key_prefix)
            limiter = AsyncSlidingWindowCounter(_redis_storage(self.url, self.key_prefix, pool))
            shared = self._redis[loop] = Allowances(limiter)
        return shared

    async def aclose(self) -> None:
        """Close this event loop's Redis connections (the app's shutdown); a later hit opens new ones."""
        loop = asyncio.get_running_loop()
        self._redis.pop(loop, None)
        pool = self._pools.pop(loop, None)
        if pool is not None:
            await pool.aclose()

    async def _retry_after(self, limiter: AsyncSlidingWindowCounter | None, item: RateLimitItem,
                           identifiers: tuple[str, ...]) -> int:
        try:
            stats = (self.limiter.get_window_stats(item, *identifiers) if limiter is None
                     else await limiter.get_window_stats(item, *identifiers))
        except (StorageError, OSError):
            return item.get_expiry()
        return max(1, min(item.get_expiry(), math.ceil(stats.reset_time - time.time())))


def _redis_pool(url: str, key_prefix: str) -> ConnectionPool:
    """The connections of one event loop's limits, named after the key prefix (CLIENT LIST says whose)."""
    name = re.sub(r"[^!-~]", "_", key_prefix)  # CLIENT SETNAME refuses spaces: a namespace may hold any text
    return ConnectionPool.from_url(url, socket_timeout=REDIS_TIMEOUT, socket_connect_timeout=REDIS_TIMEOUT,
                                   client_name=name)


def _redis_storage(url: str, key_prefix: str, pool: ConnectionPool | None = None) -> AsyncRedisStorage:
    """limits' asyncio Redis storage on redis-py (already a dependency; limits' default is coredis),
    on `pool` (which holds the address and the timeouts; a new one when not given)."""
    pool = pool if pool is not None else _redis_pool(url, key_prefix)
    return AsyncRedisStorage(f"async+{url}", implementation="redispy", key_prefix=key_prefix,
                             # a documented option of limits' Redis storage, though its **options are typed as scalars
                             wrap_exceptions=True, connection_pool=pool)  # type: ignore[arg-type]


def client_address(request: Request, trusted: tuple[Network, ...]) -> str:
    """The visitor's address: the peer, or behind a trusted proxy the last X-Forwarded-For hop that is
    not one of ours (hops to its left are the client's own claim). An IPv6 client counts by its /64."""
    peer = request.client.host if request.client else ""
    if trusted and _within(peer, trusted):
        hops = [hop.strip() for value in request.headers.getlist("x-forwarded-for") for hop in value.split(",")]
        for hop in reversed([hop for hop in hops if hop]):
            peer = hop
            if not _within(hop, trusted):
                break
    return _bucket(peer)


def _within(address: str, networks: tuple[Network, ...]) -> bool:
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(parsed in network for network in networks)


def _bucket(address: str) -> str:
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address[:100] or "unknown"
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return str(parsed)


def _rate_limits(request: Request) -> RateLimits:
    limits: RateLimits = request.app.state.rate_limits
    return limits


class StorefrontEventLimit:
    """Storefront events: per visitor first (so one visitor cannot spend the shop's budget), then per
    shop. A raised key (a bench's shop) gets OKAERI_RATE_LIMIT_RAISED_EVENTS for both."""

    def __init__(self, headers: Mapping[str, str] | None = None) -> None:
        self.headers = dict(headers or {})  # the beacon's CORS headers, so the script can read a 429

    async def __call__(self, event_key: str, request: Request) -> None:
        limits = _rate_limits(request)
        raised = event_key in limits.raised_keys
        visitor = client_address(request, limits.trusted_proxies)
        shop_key = event_key[:200]
        platform = str(request.path_params.get("platform", ""))[:16]
        try:
            await limits.hit(limits.limits.raised_events if raised else limits.limits.events_visitor,
                             "events-visitor", shop_key if raised else "", visitor, headers=self.headers)
            await limits.hit(limits.limits.raised_events if raised else limits.limits.events_shop,
                             "events-shop", shop_key, headers=self.headers)
        except RateLimitExceeded:
            metrics.intake("event", platform if platform in request.app.state.runtime.platforms else "unknown",
                           "refused", "rate_limited")
            raise


async def _tracking(request: Request) -> None:
    limits = _rate_limits(request)
    await limits.hit(limits.limits.tracking, "tracking", client_address(request, limits.trusted_proxies))


async def _unsubscribe(request: Request) -> None:
    limits = _rate_limits(request)
    bucket = f"unsubscribe-{request.method.lower()}"  # mail scanners' GETs do not spend the clicks' POSTs
    await limits.hit(limits.limits.unsubscribe, bucket, client_address(request, limits.trusted_proxies))


TrackingLimit = Depends(_tracking)
UnsubscribeLimit = Depends(_unsubscribe)

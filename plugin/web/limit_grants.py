"""Shared rate limits counted in Redis without a round trip per request.

A web process reserves a few hits of a busy key at once (one `hit(cost=n)` in Redis) and spends them
locally; a quiet key is counted one hit at a time, as before. Every request admitted is backed by a
hit Redis already counted, so all processes together never admit more than the limit. What a
reservation costs is the other way: hits reserved and not spent within GRANT_LIFE still count, so a
key can be refused a little early, by at most 1/MAX_SHARE of its limit per process. A reservation is
sized by the key's own recent rate in this process, so a visitor who sends one event now and then is
counted exactly, and near the limit a reservation that does not fit falls back to single hits, so the
last hits of a window are exact too.
"""
from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from limits import RateLimitItem

__all__ = ["GRANT_LIFE", "MAX_SHARE", "Allowances"]

GRANT_LIFE = 0.2  # seconds a reserved hit may be spent in; sizes a reservation to this much traffic
MAX_SHARE = 20  # a reservation is at most this fraction of the limit (1/20 = 5 %)
PRUNE_ABOVE = 10_000  # keys remembered before idle ones are forgotten


class Limiter(Protocol):
    async def hit(self, item: RateLimitItem, *identifiers: str, cost: int = 1) -> bool: ...


L = TypeVar("L", bound=Limiter)


@dataclass
class _Grant:
    left: int = 0  # reserved hits not yet spent
    until: float = 0.0  # monotonic time they must be spent by
    second: int = 0  # the whole second `seen` counts
    seen: int = 0  # hits of this key in this process during `second`
    last: int = 0  # ... during the second before it
    exact_until: float = 0.0  # a reservation did not fit: count one by one until then
    reserving: asyncio.Future[None] | None = field(default=None, repr=False)

    def count(self, now: float) -> None:
        second = int(now)
        if second != self.second:
            self.last = self.seen if second == self.second + 1 else 0
            self.second, self.seen = second, 0
        self.seen += 1


class Allowances(Generic[L]):
    """Counts hits on a shared limiter, reserving busy keys' hits in batches."""

    def __init__(self, limiter: L, clock: Callable[[], float] = time.monotonic) -> None:
        self.limiter = limiter
        self.clock = clock
        self._grants: dict[str, _Grant] = {}
        self._pruned = 0.0

    async def hit(self, item: RateLimitItem, *identifiers: str) -> bool:
        """Count one hit; False when the limit is spent. Raises what the limiter raises."""
        key = item.key_for(*identifiers)
        grant = self._grants.get(key)
        if grant is None:
            grant = self._grants[key] = _Grant()
            self._prune()
        grant.count(self.clock())
        while grant.reserving is not None:  # another request of this process is reserving: share it
            await asyncio.shield(grant.reserving)
        if grant.left > 0 and self.clock() < grant.until:
            grant.left -= 1
            return True
        grant.left = 0
        size = 1 if self.clock() < grant.exact_until else self._size(item, grant)
        if size == 1:
            return await self.limiter.hit(item, *identifiers)
        grant.reserving = asyncio.get_running_loop().create_future()
        try:
            reserved = await self.limiter.hit(item, *identifiers, cost=size)
            if reserved:
                grant.left, grant.until = size - 1, self.clock() + GRANT_LIFE
            else:
                grant.exact_until = self.clock() + GRANT_LIFE
        finally:
            grant.reserving.set_result(None)
            grant.reserving = None
        return reserved or await self.limiter.hit(item, *identifiers)

    @staticmethod
    def _size(item: RateLimitItem, grant: _Grant) -> int:
        """What to reserve: the hits this key is likely to get here in GRANT_LIFE, within 1/MAX_SHARE
        of the limit; 1 (count exactly) for a key that is not busy."""
        expected = math.ceil(max(grant.last, grant.seen) * GRANT_LIFE)
        return max(1, min(expected, item.amount // MAX_SHARE))

    def _prune(self) -> None:
        now = self.clock()
        if len(self._grants) <= PRUNE_ABOVE or now - self._pruned < 1.0:
            return
        self._pruned = now
        idle_before = int(now) - 1
        for key in [key for key, grant in self._grants.items()
                    if grant.second < idle_before and grant.reserving is None and grant.until < now]:
            del self._grants[key]

"""The sandbox's request budget: ColorMe's 120 requests a minute per access token, enforced.

ColorMe documents the 120/min guideline but no penalty or headers yet (PLATFORMS.md 1.3), so the
429 here is the shape a real limit would most likely take: its `errors[]` body and `Retry-After`.
Time-scaled for tests and benches: with SANDBOX_TIME_SCALE=60 a "minute" is 1 s. Off unless
SANDBOX_RATE_LIMIT (calls per scaled minute) is set or a `RateLimit` is given to SandboxConfig.

Every call that reaches the API is stamped on arrival (monotonic clock), accepted or refused, so
tests and benches can count what the platform saw per window instead of timing the client.
"""
from __future__ import annotations

import math
import os
import threading
import time
from bisect import bisect_left
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

__all__ = ["RateLimit", "enforce", "max_in_window", "per_window"]

RATE_LIMITED_CODE = 429000  # (inference) ColorMe has not published a code for this yet
MESSAGE = "APIの呼び出し回数が上限を超えました。しばらく待ってから再度お試しください"


@dataclass
class RateLimit:
    """At most `calls` accepted API calls per token in any `60 / time_scale` seconds."""

    calls: int = 120
    time_scale: float = 1.0
    now: Callable[[], float] = time.monotonic
    accepted: dict[str, list[float]] = field(default_factory=dict)  # token → arrival times
    refused: dict[str, list[float]] = field(default_factory=dict)
    _recent: dict[str, deque[float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def window(self) -> float:
        return 60.0 / self.time_scale

    @classmethod
    def from_env(cls) -> RateLimit | None:
        """SANDBOX_RATE_LIMIT calls per minute, SANDBOX_TIME_SCALE minutes a minute; None when unset."""
        calls = os.environ.get("SANDBOX_RATE_LIMIT", "")
        if not calls:
            return None
        return cls(calls=int(calls), time_scale=float(os.environ.get("SANDBOX_TIME_SCALE", "1")))

    def admit(self, token: str) -> float | None:
        """Count one call; None if it fits, else the seconds until it would."""
        with self._lock:
            now = self.now()
            recent = self._recent.setdefault(token, deque())
            while recent and recent[0] <= now - self.window:
                recent.popleft()
            if len(recent) < self.calls:
                recent.append(now)
                self.accepted.setdefault(token, []).append(now)
                return None
            self.refused.setdefault(token, []).append(now)
            return recent[0] + self.window - now

    def reset(self) -> None:
        with self._lock:
            self.accepted.clear()
            self.refused.clear()
            self._recent.clear()


def enforce(app: FastAPI, limit: RateLimit | None) -> None:
    """Answer the REST API's calls over budget with 429 (nothing happens when `limit` is None)."""
    app.state.rate_limit = limit
    if limit is None:
        return

    @app.middleware("http")
    async def rate_limited(request: Request, call_next: Any) -> Any:
        path = request.url.path.removeprefix(request.scope.get("root_path", ""))
        header = request.headers.get("authorization", "")
        if not path.startswith(("/v1/", "/appstore/")) or not header.startswith("Bearer "):
            return await call_next(request)
        wait = limit.admit(header[7:])
        if wait is None:
            return await call_next(request)
        return JSONResponse({"errors": [{"code": RATE_LIMITED_CODE, "message": MESSAGE, "status": 429}]}, 429,
                            headers={"Retry-After": str(max(1, math.ceil(wait)))})


def max_in_window(stamps: list[float], window: float) -> int:
    """The most stamps that fall in any half-open span of `window` seconds."""
    ordered = sorted(stamps)
    return max((bisect_left(ordered, s + window) - i for i, s in enumerate(ordered)), default=0)


def per_window(stamps: list[float], window: float) -> list[int]:
    """Counts in consecutive windows from the first stamp; the last, partial window is left out."""
    if not stamps:
        return []
    start, ordered = min(stamps), sorted(stamps)
    full = int((ordered[-1] - start) // window)
    return [bisect_left(ordered, start + (k + 1) * window) - bisect_left(ordered, start + k * window)
            for k in range(full)]

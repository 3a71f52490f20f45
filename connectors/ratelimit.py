"""A client-side sliding-window limiter: at most N calls in any window of W seconds."""
from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

__all__ = ["SlidingWindowLimiter"]


class SlidingWindowLimiter:
    """Blocks `acquire()` until a call fits the budget; one instance per access token."""

    def __init__(
        self,
        calls: int,
        window: float,
        *,
        now: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.calls, self.window = calls, window
        self._now, self._sleep = now, sleep
        self._stamps: deque[float] = deque()
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Wait for a slot; return the seconds waited."""
        waited = 0.0
        while True:
            with self._lock:
                now = self._now()
                while self._stamps and now - self._stamps[0] >= self.window:
                    self._stamps.popleft()
                if len(self._stamps) < self.calls:
                    self._stamps.append(now)
                    return waited
                delay = self.window - (now - self._stamps[0])
            self._sleep(delay)
            waited += delay

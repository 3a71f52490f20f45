"""Where the console renders merchants' templates: a small pool of its own threads, never the
event loop (a slow template holds no other client) nor all of the server's shared threadpool."""
from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar

__all__ = ["off_loop", "RENDER_THREADS", "THREAD_PREFIX"]

T = TypeVar("T")
RENDER_THREADS = 4  # each rendering has a time budget (plugin/channels/sandbox.py), so the queue drains
THREAD_PREFIX = "okaeri-copy"
_POOL = ThreadPoolExecutor(max_workers=RENDER_THREADS, thread_name_prefix=THREAD_PREFIX)


async def off_loop(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run `fn` (which renders merchant copy) in the console's rendering threads and await it."""
    return await asyncio.get_running_loop().run_in_executor(_POOL, partial(fn, *args, **kwargs))

"""Where the optional real services are for the tests that use them, and whether they answer."""
from __future__ import annotations

import os
import socket
from urllib.parse import urlsplit

__all__ = ["redis_url", "reachable"]


def redis_url() -> str:
    """The Redis the rate-limit tests share: OKAERI_RATE_LIMIT_URL, a Redis BROKER_URL, or local db 0."""
    for url in (os.environ.get("OKAERI_RATE_LIMIT_URL", ""), os.environ.get("BROKER_URL", "")):
        if url.startswith(("redis:", "rediss:")):
            return url
    return "redis://127.0.0.1:6379/0"


def reachable(url: str, default_port: int = 6379) -> bool:
    """Whether something accepts a TCP connection at the URL's host and port within a second."""
    parts = urlsplit(url)
    try:
        socket.create_connection((parts.hostname or "127.0.0.1", parts.port or default_port), timeout=1).close()
    except OSError:
        return False
    return True

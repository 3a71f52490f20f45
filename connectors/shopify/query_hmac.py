"""The `hmac` Shopify adds to the install and OAuth-callback query strings.

Algorithm (PLATFORMS.md 2.1, after Shopify's own `hmac-validator`): drop `hmac` (and the legacy
`signature`), merge repeated keys with commas, sort by key, join `key=value` with `&`, and compare
the lowercase hex HMAC-SHA256 under the app's client secret in constant time. A `timestamp` more
than 90 s from now is refused too, so a captured install link cannot be replayed later.
"""
from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from urllib.parse import parse_qsl

__all__ = ["MAX_CLOCK_SKEW", "QueryRefused", "sign_query", "verify_query"]

MAX_CLOCK_SKEW = 90.0
_UNSIGNED = frozenset({"hmac", "signature"})


class QueryRefused(ValueError):
    """The query's signature or timestamp does not hold; `reason` is a short machine key."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _message(pairs: Sequence[tuple[str, str]]) -> bytes:
    merged: dict[str, list[str]] = {}
    for key, value in pairs:
        if key not in _UNSIGNED:
            merged.setdefault(key, []).append(value)
    return "&".join(f"{key}={','.join(values)}" for key, values in sorted(merged.items())).encode()


def sign_query(pairs: Sequence[tuple[str, str]], secret: str) -> str:
    """The hex HMAC Shopify would put beside these parameters (used by the sandbox and tests)."""
    return hmac.new(secret.encode(), _message(pairs), hashlib.sha256).hexdigest()


def verify_query(raw_query: str, secret: str, now: float) -> dict[str, str]:
    """Check a raw query string; return its parameters (repeated keys comma-joined) or raise.

    Args:
      raw_query: the query exactly as received (after `?`).
      secret: the app's client secret; an empty one verifies nothing.
      now: the current Unix time.
    """
    try:
        pairs = parse_qsl(raw_query, keep_blank_values=True, strict_parsing=False, max_num_fields=64)
    except ValueError as exc:
        raise QueryRefused("malformed") from exc
    given = [value for key, value in pairs if key == "hmac"]
    if not secret or len(given) != 1:
        raise QueryRefused("unsigned")
    expected = sign_query(pairs, secret)
    if not hmac.compare_digest(expected.encode(), given[0].encode("utf-8", "surrogatepass")):
        raise QueryRefused("bad_signature")
    params: dict[str, str] = {}
    for key, value in pairs:
        params[key] = f"{params[key]},{value}" if key in params else value
    try:
        timestamp = float(params.get("timestamp", ""))
    except ValueError as exc:
        raise QueryRefused("stale") from exc
    if not abs(now - timestamp) <= MAX_CLOCK_SKEW:  # also refuses NaN and inf
        raise QueryRefused("stale")
    return params

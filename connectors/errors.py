"""Connector errors.

    ConnectorError            anything a platform call can fail with
    ├── Unauthorized          401/403: the token was revoked or the app uninstalled
    ├── RateLimited           429 or the client-side budget is spent; carries retry_after
    ├── ProviderDown          5xx, timeout or connection failure after retries
    ├── BadResponse           4xx other than the above, or a body we cannot read
    └── BadSignature          an inbound hook whose HMAC does not verify
"""
from __future__ import annotations

__all__ = [
    "ConnectorError",
    "Unauthorized",
    "RateLimited",
    "ProviderDown",
    "BadResponse",
    "BadSignature",
]


class ConnectorError(Exception):
    """Base class; `platform` names the platform the call went to."""

    def __init__(self, message: str, *, platform: str = "", status: int | None = None) -> None:
        super().__init__(message)
        self.platform = platform
        self.status = status


class Unauthorized(ConnectorError):
    """The platform refused our token: treat the install as revoked."""


class RateLimited(ConnectorError):
    """Too many calls; retry after `retry_after` seconds."""

    def __init__(self, message: str, *, retry_after: float, platform: str = "") -> None:
        super().__init__(message, platform=platform, status=429)
        self.retry_after = retry_after


class ProviderDown(ConnectorError):
    """The platform did not answer properly after retries (5xx, timeout, network)."""


class BadResponse(ConnectorError):
    """A 4xx we did not expect, or a body that is not the documented shape."""


class BadSignature(ConnectorError):
    """An inbound hook or webhook failed HMAC verification."""

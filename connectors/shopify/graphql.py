"""The one door to the GraphQL Admin API: pinned version, cost-based throttling, retries.

Shopify meters GraphQL by calculated query cost per app and store (PLATFORMS.md 2.4): every answer
carries `extensions.cost.throttleStatus {maximumAvailable, currentlyAvailable, restoreRate}`. The
client remembers the last status and, before a query, waits until the bucket has restored enough
for the query's expected cost; a `THROTTLED` error (often with HTTP 200) waits for the restore and
retries, a 429 waits `Retry-After`, 5xx and timeouts back off. Other GraphQL errors raise.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from connectors import metrics
from connectors.errors import BadResponse, ProviderDown, RateLimited, Unauthorized
from connectors.shopify.shop_domain import admin_url

__all__ = ["API_VERSION", "GraphQLClient", "ThrottleStatus", "AccessDenied"]

log = logging.getLogger("okaeri.shopify")
PLATFORM = "shopify"
API_VERSION = "2026-10"  # the one pinned Admin API version (also in shopify.app.toml's webhooks)
RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0, 8.0)
MAX_THROTTLE_WAITS = 20
MAX_RETRY_AFTER = 60.0


class AccessDenied(BadResponse):
    """ACCESS_DENIED / 403: e.g. protected customer data not yet approved — a state to show, not retry."""


@dataclass
class ThrottleStatus:
    maximum: float
    available: float
    restore_rate: float
    seen_at: float

    def available_at(self, now: float) -> float:
        return min(self.maximum, self.available + (now - self.seen_at) * self.restore_rate)


class GraphQLClient:
    """One shop's GraphQL client; the token comes from a callable so a refreshed one is picked up."""

    def __init__(self, shop: str, token: Callable[[], str], *, transport: httpx.BaseTransport | None = None,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic,
                 timeout: float = 20.0, api_base: str | None = None,
                 on_unauthorized: Callable[[str], str] | None = None) -> None:
        # api_base: the sandbox shop's address in the demo, tests and benches; Shopify otherwise.
        path = f"/admin/api/{API_VERSION}/graphql.json"
        self._url = f"{api_base.rstrip('/')}{path}" if api_base else admin_url(shop, path)
        self._token = token
        # Expiring tokens: a 401 asks for a refreshed token (given the refused one) and retries once.
        self._on_unauthorized = on_unauthorized
        self._http = httpx.Client(timeout=httpx.Timeout(timeout, connect=5.0), transport=transport)
        self._sleep, self._clock = sleep, clock
        self.throttle: ThrottleStatus | None = None
        self.requested = 0.0  # the last answer's requestedQueryCost
        self.waited = 0.0  # seconds spent waiting for the bucket (for metrics and the bench)

    def close(self) -> None:
        self._http.close()

    def query(self, document: str, variables: dict[str, Any] | None = None, *, expected_cost: float = 10.0) -> dict[str, Any]:
        """Run a query or mutation and return its `data`, waiting and retrying as the budget requires."""
        throttled = attempt = 0
        refreshed = False
        while True:
            self._wait_for(expected_cost)
            token = self._token()
            try:
                response = self._http.post(self._url, json={"query": document, "variables": variables or {}},
                                           headers={"X-Shopify-Access-Token": token})
            except httpx.TransportError as exc:
                attempt = self._backoff(attempt, f"Shopify unreachable: {exc}")
                continue
            if response.status_code >= 500:
                attempt = self._backoff(attempt, f"Shopify answered {response.status_code}")
                continue
            if response.status_code == 429:
                wait = _retry_after(response)
                if wait > MAX_RETRY_AFTER:
                    raise RateLimited("Shopify rate limit", retry_after=wait, platform=PLATFORM)
                self._pause(wait)
                continue
            if response.status_code == 401 and self._on_unauthorized is not None and not refreshed:
                self._on_unauthorized(token)  # raises Unauthorized when no fresh token can be had
                refreshed = True
                continue
            body = _decode(response)
            self._remember(body)
            errors = body.get("errors") or []
            if any(_code(e) == "THROTTLED" for e in errors):
                throttled += 1
                if throttled > MAX_THROTTLE_WAITS:
                    raise RateLimited("Shopify stayed throttled", retry_after=60.0, platform=PLATFORM)
                self._wait_for(max(expected_cost, self.requested), force=True)
                continue
            if any(_code(e) == "ACCESS_DENIED" for e in errors):
                raise AccessDenied(_messages(errors), platform=PLATFORM, status=403)
            if errors:
                raise BadResponse(_messages(errors), platform=PLATFORM)
            data = body.get("data")
            if not isinstance(data, dict):
                raise BadResponse("Shopify answered without data", platform=PLATFORM)
            return data

    def _wait_for(self, cost: float, *, force: bool = False) -> None:
        """Sleep until the bucket holds `cost` points (at least 1 s more when Shopify said THROTTLED)."""
        status = self.throttle
        if status is None or status.restore_rate <= 0:
            if force:
                self._pause(1.0)
            return
        need = min(cost, status.maximum) - status.available_at(self._clock())
        if need > 0:
            self._pause(need / status.restore_rate)
        elif force:
            self._pause(1.0)

    def _remember(self, body: dict[str, Any]) -> None:
        extension = (body.get("extensions") or {}).get("cost") or {}
        cost = extension.get("throttleStatus") or {}
        try:
            self.requested = float(extension.get("requestedQueryCost") or 0)
        except (TypeError, ValueError):
            self.requested = 0.0
        try:
            self.throttle = ThrottleStatus(float(cost["maximumAvailable"]), float(cost["currentlyAvailable"]),
                                           float(cost["restoreRate"]), self._clock())
        except (KeyError, TypeError, ValueError):
            pass

    def _backoff(self, attempt: int, message: str) -> int:
        if attempt >= len(RETRY_DELAYS):
            raise ProviderDown(message, platform=PLATFORM)
        log.info("okaeri.shopify.retry", extra={"attempt": attempt, "reason": message[:80]})
        self._pause(RETRY_DELAYS[attempt])
        return attempt + 1

    def _pause(self, seconds: float) -> None:
        self.waited += seconds
        metrics.waited(PLATFORM, seconds)
        self._sleep(seconds)


def _code(error: Any) -> str:
    return str(((error or {}).get("extensions") or {}).get("code") or "") if isinstance(error, dict) else ""


def _messages(errors: list[Any]) -> str:
    return "; ".join(str(e.get("message", e))[:200] for e in errors if isinstance(e, dict)) or "GraphQL error"


def _retry_after(response: httpx.Response) -> float:
    try:
        return max(1.0, float(response.headers.get("Retry-After", "2")))
    except ValueError:
        return 2.0


def _decode(response: httpx.Response) -> dict[str, Any]:
    if response.status_code == 401:
        raise Unauthorized("Shopify refused the token", platform=PLATFORM, status=401)
    if response.status_code == 403:
        raise AccessDenied("Shopify denied access (protected customer data or scopes)", platform=PLATFORM, status=403)
    if response.status_code >= 400:
        raise BadResponse(f"Shopify answered {response.status_code}", platform=PLATFORM, status=response.status_code)
    try:
        body = response.json()
    except ValueError as exc:
        raise BadResponse("Shopify answered with a body that is not JSON", platform=PLATFORM) from exc
    if not isinstance(body, dict):
        raise BadResponse("Shopify answered with JSON that is not an object", platform=PLATFORM)
    return body

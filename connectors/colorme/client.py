"""HTTP client for the ColorMe Shop REST API: timeouts, retries, throttling, error mapping."""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx

from connectors.errors import BadResponse, ProviderDown, RateLimited, Unauthorized
from connectors.ratelimit import MemoryBudget, RequestBudget, budget_for, token_key

__all__ = ["ColorMeClient", "PAGE_LIMITS"]

log = logging.getLogger("okaeri.colorme")
PLATFORM = "colorme"
# Documented maximum page sizes; larger values are clamped silently by the API.
PAGE_LIMITS = {"sales": 100, "customers": 100, "products": 50}
RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0)
MAX_RETRY_AFTER = 30.0  # a longer 429 pause is the job's to wait out (RateLimited), not a blocked thread's
MAX_WAIT = 90.0  # seconds one call may block for a slot in the budget (a full window, then RateLimited)


class ColorMeClient:
    """One access token's client; safe to share between threads.

    Every call spends one slot of the token's budget (`requests_per_minute` in any `window` seconds;
    the window is shorter only for time-scaled tests and benches). With `budget_store` the budget is
    this process's or, for a redis:// URL, every process's sharing that Redis; without it (or a
    `budget` given) the client has a budget of its own.
    """

    def __init__(
        self,
        api_base: str,
        access_token: str,
        *,
        requests_per_minute: int = 120,
        window: float = 60.0,
        budget_store: str | None = None,
        namespace: str = "okaeri",
        budget: RequestBudget | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        timeout: float = 15.0,
        max_wait: float = MAX_WAIT,
    ) -> None:
        self._http = httpx.Client(
            base_url=api_base,
            headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"},
            timeout=httpx.Timeout(timeout, connect=5.0),
            transport=transport,
        )
        if budget is None:
            budget = (MemoryBudget(requests_per_minute, window, sleep=sleep) if budget_store is None else
                      budget_for(budget_store, token_key(PLATFORM, access_token), requests_per_minute, window,
                                 namespace=namespace))
        self.budget = budget
        self._sleep, self._max_wait = sleep, max_wait

    def close(self) -> None:
        """Close the pooled HTTP connections."""
        self._http.close()

    def get(self, path: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """GET a JSON resource, retrying timeouts and 5xx with backoff."""
        for attempt, delay in enumerate((*RETRY_DELAYS, None)):
            try:
                response = self._spend(lambda: self._http.get(path, params=params))
            except httpx.TransportError as exc:
                if delay is None:
                    raise ProviderDown(f"ColorMe unreachable: {exc}", platform=PLATFORM) from exc
                self._sleep(delay)
                continue
            if response.status_code >= 500 and delay is not None:
                log.info("okaeri.colorme.retry", extra={"status": response.status_code, "attempt": attempt})
                self._sleep(delay)
                continue
            if response.status_code == 429:
                retry_after = _retry_after(response)
                self.budget.pause(retry_after)  # every process spending this token's budget waits it out
                log.info("okaeri.colorme.rate-limited", extra={"retry_after": retry_after, "attempt": attempt})
                if retry_after > MAX_RETRY_AFTER or delay is None:
                    raise RateLimited("ColorMe rate limit", retry_after=retry_after, platform=PLATFORM)
                continue  # the next slot is reserved after the pause
            return _decode(response)
        raise AssertionError("unreachable")  # pragma: no cover

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST JSON once: creates are not idempotent, so no automatic retry."""
        return self._send_once("POST", path, body)

    def put(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """PUT JSON once (the caller decides whether a repeat is safe)."""
        return self._send_once("PUT", path, body)

    def delete(self, path: str) -> dict[str, Any]:
        """DELETE once; an empty answer reads as `{}`."""
        return self._send_once("DELETE", path, None)

    def _send_once(self, method: str, path: str, body: dict[str, Any] | None) -> dict[str, Any]:
        try:
            response = self._spend(lambda: self._http.request(method, path, json=body))
        except httpx.TransportError as exc:
            raise ProviderDown(f"ColorMe unreachable: {exc}", platform=PLATFORM) from exc
        if response.status_code == 429:
            self.budget.pause(_retry_after(response))
            raise RateLimited("ColorMe rate limit", retry_after=_retry_after(response), platform=PLATFORM)
        return _decode(response)

    def _spend(self, call: Callable[[], httpx.Response]) -> httpx.Response:
        """Make one call in a slot of the budget, held until the answer (or the failure) is in."""
        try:
            ticket = self.budget.reserve(self._max_wait)
        except RateLimited as exc:
            raise RateLimited("ColorMe request budget spent", retry_after=exc.retry_after, platform=PLATFORM) from exc
        try:
            return call()
        finally:
            self.budget.settle(ticket)

    def paginate(
        self, path: str, key: str, params: dict[str, Any], limit: int
    ) -> Iterator[tuple[dict[str, Any], int]]:
        """Yield (record, total) walking offset/limit pages until meta.total is reached."""
        offset = 0
        while True:
            body = self.get(path, {**params, "limit": limit, "offset": offset})
            records = body.get(key)
            if not isinstance(records, list):
                raise BadResponse(f"ColorMe {path}: no '{key}' list in response", platform=PLATFORM)
            total = int((body.get("meta") or {}).get("total", len(records)))
            for record in records:
                yield record, total
            offset += len(records)
            if not records or offset >= total:
                return


def _retry_after(response: httpx.Response) -> float:
    try:
        return max(1.0, float(response.headers.get("Retry-After", "60")))
    except ValueError:
        return 60.0


def _decode(response: httpx.Response) -> dict[str, Any]:
    status = response.status_code
    if status in (401, 403):
        raise Unauthorized(_error_text(response), platform=PLATFORM, status=status)
    if status == 429 or status >= 500:
        exc_type = ProviderDown if status >= 500 else BadResponse
        raise exc_type(f"ColorMe answered {status}", platform=PLATFORM, status=status)
    if status >= 400:
        raise BadResponse(_error_text(response), platform=PLATFORM, status=status)
    if status == 204:  # a DELETE answers with no body
        return {}
    try:
        body = response.json()
    except ValueError as exc:
        raise BadResponse("ColorMe answered with a body that is not JSON", platform=PLATFORM) from exc
    if not isinstance(body, dict):
        raise BadResponse("ColorMe answered with JSON that is not an object", platform=PLATFORM)
    return body


def _error_text(response: httpx.Response) -> str:
    """Join the messages of ColorMe's `{"errors": [{code, message, status}]}` body."""
    try:
        errors = response.json().get("errors") or []
        return "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errors) or response.text
    except (ValueError, AttributeError):
        return f"ColorMe answered {response.status_code}"

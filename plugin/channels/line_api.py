"""A small client of the LINE Messaging API: bot info and push, every call with a timeout.

Errors, by what the caller must do:

    LineError                    any answer but success (status, LINE's message)
    ├── LineUnavailable          5xx or no answer (timeout, connection): the outcome is unknown,
    │                            retry with the same X-Line-Retry-Key
    ├── LineRateLimited          429 of the per-second rate limit: retry later
    │   └── LineQuotaExhausted   429 because the month's message quota is used up: pause the account
    ├── LineUnauthorized         401/403: the channel access token is wrong or revoked
    └── LineRefused              any other 4xx: this request will never be accepted
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

__all__ = ["LineApi", "LineError", "LineUnavailable", "LineRateLimited", "LineQuotaExhausted", "LineUnauthorized",
           "LineRefused", "PushResult", "DEFAULT_BASE"]

DEFAULT_BASE = "https://api.line.me"


class LineError(Exception):
    """LINE did not accept the request; `status` 0 when there was no answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"LINE {status or 'no answer'}: {message}")
        self.status = status
        self.message = message


class LineUnavailable(LineError):
    """5xx or no answer: the push may or may not have been accepted."""


class LineRateLimited(LineError):
    """429 of the request rate limit."""


class LineQuotaExhausted(LineRateLimited):
    """429 because the account's monthly message quota is used up ("You have reached your monthly limit.")."""


class LineUnauthorized(LineError):
    """401 or 403: the token is invalid, expired or lacks the right."""


class LineRefused(LineError):
    """A 4xx other than 401/403/409/429: the request is wrong and will stay wrong."""


@dataclass(frozen=True)
class PushResult:
    """A push LINE took: now (200) or earlier, under the same retry key (409)."""

    already_accepted: bool
    request_id: str


class LineApi:
    """The Messaging API over one pooled httpx client (thread-safe); `transport` serves tests and the sandbox."""

    def __init__(self, base_url: str = DEFAULT_BASE, timeout: float = 10.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = httpx.Client(base_url=self.base_url, timeout=httpx.Timeout(timeout), transport=transport)

    def bot_info(self, token: str) -> dict[str, Any]:
        """GET /v2/bot/info: the bot's userId, basicId and displayName (checks the token)."""
        response = self._call("GET", "/v2/bot/info", token)
        if response.status_code != 200:
            raise _error(response)
        body = response.json()
        return body if isinstance(body, dict) else {}

    def push(self, token: str, to: str, messages: list[dict[str, Any]], retry_key: str) -> PushResult:
        """POST /v2/bot/message/push with `X-Line-Retry-Key`; 409 is a push accepted before."""
        response = self._call("POST", "/v2/bot/message/push", token, json={"to": to, "messages": messages},
                              headers={"X-Line-Retry-Key": retry_key})
        request_id = response.headers.get("x-line-request-id", "")
        if response.status_code == 200:
            return PushResult(False, request_id)
        if response.status_code == 409:
            return PushResult(True, request_id)
        raise _error(response)

    def _call(self, method: str, path: str, token: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}", **kwargs.pop("headers", {})}
        try:
            return self._client.request(method, path, headers=headers, **kwargs)
        except httpx.TimeoutException as exc:
            raise LineUnavailable(0, f"timeout: {exc}") from exc
        except httpx.TransportError as exc:
            raise LineUnavailable(0, f"connection failed: {exc}") from exc

    def close(self) -> None:
        self._client.close()


def _error(response: httpx.Response) -> LineError:
    status = response.status_code
    try:
        body = response.json()
        message = str(body.get("message", "")) if isinstance(body, dict) else ""
    except ValueError:
        message = response.text[:200]
    if status >= 500:
        return LineUnavailable(status, message)
    if status == 429:
        return LineQuotaExhausted(status, message) if "monthly limit" in message.lower() else LineRateLimited(status, message)
    if status in (401, 403):
        return LineUnauthorized(status, message)
    return LineRefused(status, message)

"""A fake LINE Messaging API for the sandbox and the tests: it knows the bots whose tokens it was
given, records every push it accepts (with its X-Line-Retry-Key), answers a repeated key with 409
as LINE does, answers 5xx, 429 (rate or monthly quota), 400 or a timeout when told to, and sends
signed webhooks (follow, unfollow, message, postback) the way LINE signs them.

`handle` speaks httpx, so `transport()` plugs it into the real client with no network; `router()`
serves the same over HTTP for the demo (mounted in the sandbox app at /sandbox/line).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import APIRouter, Request, Response

__all__ = ["FakeLineApi", "Push", "signature", "webhook_body", "follow_event", "unfollow_event", "message_event",
           "postback_event", "send_webhook"]


@dataclass(frozen=True)
class Push:
    token: str
    to: str
    messages: list[dict[str, Any]]
    retry_key: str


@dataclass
class FakeLineApi:
    bots: dict[str, dict[str, Any]] = field(default_factory=dict)  # token → bot info
    pushes: list[Push] = field(default_factory=list)  # accepted, in order
    requests: list[tuple[str, int]] = field(default_factory=list)  # (retry key, status answered) of every push request
    exhausted: set[str] = field(default_factory=set)  # tokens whose monthly quota is used up
    answers: deque[int | str] = field(default_factory=deque)  # scripted answers of the next pushes
    _accepted: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add_bot(self, token: str, user_id: str | None = None, basic_id: str = "@okaeri", name: str = "テスト商店") -> dict[str, Any]:
        info = {"userId": user_id or f"U{uuid.uuid4().hex}", "basicId": basic_id, "displayName": name,
                "chatMode": "bot", "markAsReadMode": "auto"}
        self.bots[token] = info
        return info

    def answer_next(self, *answers: int | str) -> None:
        """The next pushes get these answers: a status (500, 429, 400 …), "quota", "timeout", or
        "accept-then-500" (LINE took it, the answer was lost: a retry must get 409)."""
        self.answers.extend(answers)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        if token not in self.bots:
            return _json(401, {"message": "Authentication failed. Confirm that the access token in the authorization header is valid."})
        if request.method == "GET" and request.url.path == "/v2/bot/info":
            return _json(200, self.bots[token])
        if request.method == "POST" and request.url.path == "/v2/bot/message/push":
            return self._push(token, request)
        return _json(404, {"message": "Not found"})

    def _push(self, token: str, request: httpx.Request) -> httpx.Response:
        key = request.headers.get("x-line-retry-key", "")
        with self._lock:
            scripted = self.answers.popleft() if self.answers else None
            status, body = self._answer(token, request, key, scripted)
            self.requests.append((key, status))
        if status == 0:
            raise httpx.ReadTimeout("fake LINE: no answer", request=request)
        return _json(status, body, {"x-line-request-id": uuid.uuid4().hex})

    def _answer(self, token: str, request: httpx.Request, key: str, scripted: int | str | None) -> tuple[int, dict[str, Any]]:
        if key and key in self._accepted:
            return 409, {"message": "The retry key is already accepted", "sentMessages": []}
        if scripted == "timeout":
            return 0, {}
        if scripted == "quota" or token in self.exhausted:
            return 429, {"message": "You have reached your monthly limit."}
        if isinstance(scripted, int) and scripted >= 400:
            messages = {400: "The request body has 1 error(s)", 429: "The API rate limit has been exceeded. Try again later."}
            return scripted, {"message": messages.get(scripted, "Internal server error")}
        body = json.loads(request.content or b"{}")
        if not isinstance(body.get("messages"), list) or not 1 <= len(body["messages"]) <= 5 or not body.get("to"):
            return 400, {"message": "The request body has 1 error(s)"}
        self.pushes.append(Push(token, str(body["to"]), body["messages"], key))
        if key:
            self._accepted.add(key)
        if scripted == "accept-then-500":
            return 500, {"message": "Internal server error"}
        return 200, {"sentMessages": [{"id": str(len(self.pushes)), "quoteToken": uuid.uuid4().hex}]}

    def router(self) -> APIRouter:
        """The same API over HTTP (the demo's worker calls it at <sandbox>/line)."""
        router = APIRouter()

        @router.api_route("/v2/bot/{rest:path}", methods=["GET", "POST"], include_in_schema=False)
        async def api(rest: str, request: Request) -> Response:
            fake = httpx.Request(request.method, f"http://fake/v2/bot/{rest}", headers=dict(request.headers),
                                 content=await request.body())
            try:
                answer = self.handle(fake)
            except httpx.TimeoutException:
                return Response(status_code=504)
            return Response(answer.content, answer.status_code, media_type="application/json",
                            headers={k: v for k, v in answer.headers.items() if k.startswith("x-line")})
        return router


def send_webhook(url: str, secret: str, destination: str, *events: dict[str, Any], timeout: float = 10.0) -> httpx.Response:
    """POST events to an app's webhook URL, signed as LINE signs them."""
    body = webhook_body(destination, *events)
    return httpx.post(url, content=body, timeout=timeout,
                      headers={"content-type": "application/json", "x-line-signature": signature(secret, body)})


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


def signature(secret: str, body: bytes) -> str:
    """x-line-signature: Base64(HMAC-SHA256(channel secret, raw body))."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def webhook_body(destination: str, *events: dict[str, Any]) -> bytes:
    return json.dumps({"destination": destination, "events": list(events)}, ensure_ascii=False).encode()


def _event(kind: str, user_id: str, **extra: Any) -> dict[str, Any]:
    return {"type": kind, "mode": "active", "timestamp": int(time.time() * 1000),
            "source": {"type": "user", "userId": user_id}, "webhookEventId": f"01{uuid.uuid4().hex[:24].upper()}",
            "deliveryContext": {"isRedelivery": False}, **extra}


def follow_event(user_id: str, unblocked: bool = False) -> dict[str, Any]:
    return _event("follow", user_id, replyToken=uuid.uuid4().hex, follow={"isUnblocked": unblocked})


def unfollow_event(user_id: str) -> dict[str, Any]:
    return _event("unfollow", user_id)


def message_event(user_id: str, text: str) -> dict[str, Any]:
    return _event("message", user_id, replyToken=uuid.uuid4().hex,
                  message={"type": "text", "id": uuid.uuid4().hex[:18], "text": text, "quoteToken": uuid.uuid4().hex})


def postback_event(user_id: str, data: str) -> dict[str, Any]:
    return _event("postback", user_id, replyToken=uuid.uuid4().hex, postback={"data": data})

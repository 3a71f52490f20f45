"""The console inside a platform's admin frame: what each answer to a session-token request carries.

`deps.embedded_shop` records, on the request's state, the token and the platform's wishes; this
middleware then, for that request only: allows the platform's admin to frame the answer (CSP
`frame-ancestors`), puts the platform's <head> markup (its frame library) into HTML pages, and
keeps a redirect to another console page inside the admin by carrying the token on its URL
(a redirect's browser request has no Authorization header; the token lives a minute).
"""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["Embedded", "EmbeddedAnswers", "STATE_KEY"]

STATE_KEY = "okaeri_embedded"


@dataclass(frozen=True)
class Embedded:
    """A request the platform's session token authenticated."""

    token: str
    frame_ancestors: tuple[str, ...]
    head: str


class EmbeddedAnswers:
    """ASGI middleware: adds the embedded answer's header, head markup and redirect token."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        start: Message | None = None
        body: list[bytes] = []

        async def answer(message: Message) -> None:
            nonlocal start
            embedded = state.get(STATE_KEY)
            if not isinstance(embedded, Embedded):
                await send(message)
                return
            if message["type"] == "http.response.start":
                start = _started(message, embedded)
                if not _is_html(start):
                    await send(start)
                    start = None
                return
            if start is None:
                await send(message)
                return
            body.append(message.get("body", b""))
            if not message.get("more_body", False):
                page = _with_head(b"".join(body), embedded.head)
                headers = MutableHeaders(scope=start)
                headers["content-length"] = str(len(page))
                await send(start)
                await send({"type": "http.response.body", "body": page})

        await self.app(scope, receive, answer)


def _started(message: Message, embedded: Embedded) -> Message:
    headers = MutableHeaders(scope=message)
    if embedded.frame_ancestors:
        headers["content-security-policy"] = "frame-ancestors " + " ".join(embedded.frame_ancestors)
    location = headers.get("location", "")
    if 300 <= message["status"] < 400 and location.startswith("/app") and "id_token=" not in location:
        separator = "&" if "?" in location else "?"
        headers["location"] = f"{location}{separator}{urlencode({'id_token': embedded.token, 'embedded': '1'})}"
    return message


def _is_html(message: Message) -> bool:
    return MutableHeaders(scope=message).get("content-type", "").startswith("text/html")


def _with_head(page: bytes, head: str) -> bytes:
    if not head:
        return page
    at = page.find(b"</head>")
    return page if at < 0 else page[:at] + head.encode() + b"\n" + page[at:]

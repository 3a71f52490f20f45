"""One way a refusal reaches a visitor: every error the app raises, every HTTPException (404 and 405
included) and every domain error becomes a clear 4xx — an HTML page in the visitor's language for a
browser, JSON for an API client — and anything unexpected a calm 500 whose traceback goes to the log.

    AppError                a refusal raised by the app's routes: a status and a message key whose
    │                       Japanese and English texts live in plugin.web.i18n.ERRORS
    └── RateLimitExceeded   429 with Retry-After (plugin.web.ratelimit)

JSON answers carry `error` (the reason in the visitor's language where the app has it, else the
platform's or library's own words), `code` (a stable key) and `detail` (the whole message: both
languages for the app's own, the raiser's text otherwise).
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from connectors.errors import BadResponse, BadSignature, ConnectorError
from connectors.payloads import UnreadableJson
from connectors.storefront import InvalidEvent
from plugin.channels.base import PermanentFailure, TemporaryFailure
from plugin.channels.copy_errors import CopyError
from plugin.console.forms import SettingError
from plugin.crypto import BadSignature as BadLinkSignature
from plugin.platforms import UnknownPlatform
from plugin.sync.run import UnknownShop
from plugin.web.i18n import error_text, request_lang, status_text
from plugin.web.templating import render_page

__all__ = ["AppError", "RateLimitExceeded", "install_error_handlers", "in_language", "error_response"]

log = logging.getLogger("okaeri.web")

# Paths whose callers are programs (storefront beacons, platform hooks, the pixel): always JSON.
API_PREFIXES = ("/events/", "/storefront/", "/t/o/")
LANGS = ("ja", "en")  # the order of a (Japanese, English) pair

Text = str | tuple[str, str]  # one text for both languages, or (Japanese, English)


class AppError(Exception):
    """A request the app refuses: `status`, a message `key` of i18n.ERRORS, the fields the message
    names (a field may be a (Japanese, English) pair), and headers for the answer."""

    def __init__(self, status: int, key: str, /, *, headers: Mapping[str, str] | None = None, **params: Text) -> None:
        super().__init__(key)
        self.status, self.key, self.params, self.headers = status, key, params, dict(headers or {})

    def message(self, lang: str) -> str:
        """The message in `lang`."""
        filled = {name: value[LANGS.index(lang) if lang in LANGS else 0] if isinstance(value, tuple) else value
                  for name, value in self.params.items()}
        return error_text(lang, self.key, filled) or status_text(lang, self.status)[1]


class RateLimitExceeded(AppError):
    """Too many requests from one visitor or to one shop; the answer says when to come back."""

    def __init__(self, retry_after: int, *, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(429, "rate_limited", headers={**(headers or {}), "Retry-After": str(retry_after)},
                         seconds=str(retry_after))
        self.retry_after = retry_after


def in_language(text: str) -> tuple[str, str]:
    """A "日本語 / English" message as a (Japanese, English) pair; one text serves both otherwise."""
    japanese, separator, english = text.partition(" / ")
    return (japanese, english) if separator else (text, text)


def install_error_handlers(app: FastAPI) -> None:
    """Route every refusal through `error_response`, and catch what nothing else caught."""
    app.exception_handler(AppError)(_app_error)
    app.exception_handler(StarletteHTTPException)(_http_exception)
    app.exception_handler(RequestValidationError)(_validation_error)
    for kind in DOMAIN_ERRORS:
        app.exception_handler(kind)(_domain_error)
    app.add_middleware(CalmServerErrors)


async def _app_error(request: Request, exc: AppError) -> Response:
    said = {lang: exc.message(lang) for lang in LANGS}
    detail = said["ja"] if said["ja"] == said["en"] else f"{said['ja']} / {said['en']}"
    return error_response(request, exc.status, said, said, code=exc.key, detail=detail, headers=exc.headers)


async def _http_exception(request: Request, exc: StarletteHTTPException) -> Response:
    """FastAPI's own (404 no route, 405 wrong method) and any a route raises with a plain text:
    a text shows on a page only in its own language, else the status's calm sentence does."""
    detail = exc.detail if isinstance(exc.detail, str) else ""
    ja, en = in_language(detail)
    page = {"ja": ja if _has_japanese(ja) else "", "en": en if not _has_japanese(en) else ""}
    said = {lang: page[lang] or detail for lang in LANGS}
    return error_response(request, exc.status_code, page, said, code=f"http_{exc.status_code}",
                          detail=detail or status_text("en", exc.status_code)[0], headers=exc.headers)


async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
    first: dict[str, Any] = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
    where = ".".join(str(p) for p in first.get("loc", ()))
    reason = f"{where}: {first.get('msg')}"
    page = {lang: error_text(lang, "validation", {"where": where, "reason": str(first.get("msg"))}) or "" for lang in LANGS}
    return error_response(request, 422, page, dict.fromkeys(LANGS, reason), code="validation", detail=reason)


# Domain errors raised below the web layer, by status and message key (the most specific first).
DOMAIN_ERRORS: dict[type[Exception], tuple[int, str]] = {
    SettingError: (422, "setting_refused"),
    CopyError: (422, "template_error"),
    InvalidEvent: (422, "invalid_event"),
    UnreadableJson: (400, "unreadable_json"),
    BadLinkSignature: (400, "invalid_link"),
    UnknownPlatform: (404, "unknown_platform"),
    UnknownShop: (404, "unknown_shop"),
    BadSignature: (401, "invalid_signature"),  # platform reviews require 401
    BadResponse: (400, "platform_refused"),
    ConnectorError: (502, "platform_down"),  # the platform failed, not the caller
    TemporaryFailure: (502, "mail_refused"),
    PermanentFailure: (502, "mail_refused"),
}


async def _domain_error(request: Request, exc: Exception) -> Response:
    """A page in the visitor's language; JSON in the error's own words (a platform hook's caller
    reads what it read before this handler existed)."""
    status, key = next(answer for kind, answer in DOMAIN_ERRORS.items() if isinstance(exc, kind))
    text = str(exc)
    pair = in_language(text) if isinstance(exc, SettingError) else ("", text)
    page = {lang: error_text(lang, key, {"reason": pair[i], "platform": text}) or "" for i, lang in enumerate(LANGS)}
    own_words = "invalid signature" if isinstance(exc, BadSignature) else text
    said = {lang: pair[i] or own_words for i, lang in enumerate(LANGS)}
    return error_response(request, status, page, said, code=key, detail=text)


def error_response(request: HTTPConnection, status: int, page: Mapping[str, str], said: Mapping[str, str], *,
                   code: str, detail: str, headers: Mapping[str, str] | None = None) -> Response:
    """The answer for a refusal. `page` is the message a browser shows, per language ("" where the
    app has none in that language: the status's calm sentence shows); `said` the `error` of a JSON answer."""
    lang = request_lang(request)
    heading, sentence = status_text(lang, status)
    if _wants_html(request):
        return _page(lang, status, heading, page.get(lang) or sentence, headers)
    body = {"error": said.get(lang) or sentence, "code": code, "detail": detail}
    return JSONResponse(body, status, headers=dict(headers or {}))


def _page(lang: str, status: int, heading: str, message: str, headers: Mapping[str, str] | None) -> Response:
    page = render_page("error.html", lang, status, title=heading, message=message, status=status)
    page.headers.update(headers or {})
    return page


def _wants_html(request: HTTPConnection) -> bool:
    """A browser: it asks for text/html and prefers it to JSON; API paths always get JSON."""
    path = request.url.path
    if path.startswith(API_PREFIXES) or "/hooks/" in path:
        return False
    accept = request.headers.get("accept", "")
    html = _quality(accept, "text/html")
    return html > 0 and html >= _quality(accept, "application/json")


def _quality(accept: str, media_type: str) -> float:
    for part in accept.split(",")[:30]:
        kind, _, params = part.strip().partition(";")
        if kind.strip().lower() == media_type:
            params = params.strip()
            try:
                return float(params[2:]) if params.startswith("q=") else 1.0
            except ValueError:
                return 0.0
    return 0.0


def _has_japanese(text: str) -> bool:
    return any("\u3040" <= ch <= "\u30ff" or "\u4e00" <= ch <= "\u9fff" or "\uff00" <= ch <= "\uffef" for ch in text)


class CalmServerErrors:
    """Catches what no handler did: logs the traceback and answers a calm 500 itself, so the server
    keeps the connection open (a 500 from Starlette's last-resort handler closes it)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watched_send)
        except Exception:
            log.exception("okaeri.web.unhandled %s %s", scope.get("method"), scope.get("path"))
            if started:  # half an answer is out: nothing calm can follow it
                raise
            response = error_response(HTTPConnection(scope), 500, {}, {}, code="server_error",
                                      detail="internal server error")
            await response(scope, receive, send)

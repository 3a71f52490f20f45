"""Demo-only pages: log in as the sandbox merchant, read the emails the catcher received."""
from __future__ import annotations

import html
import re
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import func, select
from sqlmodel import col

from plugin.clock import as_utc
from plugin.demo.mailcatcher import MailCatcher
from plugin.storage.models import InstallState, Message, MessageStatus, Shop
from plugin.web.deps import SESSION_COOKIE, RuntimeDep, SessionDep, session_cookie

__all__ = ["demo_router"]

OPEN_PIXEL = re.compile(r"<img [^>]*src=\"[^\"]*/t/o/[^\"]*\"[^>]*>")


def demo_router(catcher: MailCatcher) -> APIRouter:
    router = APIRouter(prefix="/demo")

    @router.get("/login")
    def login(runtime: RuntimeDep, session: SessionDep) -> RedirectResponse:
        shop = session.execute(select(Shop).where(col(Shop.state) == InstallState.active)).scalars().first()
        if shop is None:
            raise HTTPException(409, "the sandbox shop is still being installed; retry in a few seconds")
        response = RedirectResponse("/app/settings", status_code=303)
        response.set_cookie(SESSION_COOKIE, session_cookie(runtime, shop.id or 0), httponly=True, samesite="lax")
        return response

    @router.get("/outbox", response_class=HTMLResponse)
    def outbox(runtime: RuntimeDep, session: SessionDep) -> HTMLResponse:
        rows = "".join(
            f"<tr><td>{html.escape(str(m['Date']))}</td><td>{html.escape(str(m['To']))}</td>"
            f"<td><a href='/demo/outbox/{i}'>{html.escape(str(m['Subject']))}</a></td></tr>"
            for i, m in reversed(list(enumerate(catcher.snapshot())))
        )
        return HTMLResponse(
            "<!doctype html><meta charset='utf-8'><title>Okaeri demo outbox</title>"
            "<body style='font-family:sans-serif;max-width:960px;margin:2rem auto'>"
            f"<h1>受信したメール / Delivered emails ({len(catcher.snapshot())})</h1>{_waiting(runtime, session)}"
            f"<table><tr><th>Date</th><th>To</th><th>Subject</th></tr>{rows}</table></body>")

    @router.get("/outbox/{index}", response_class=HTMLResponse)
    def message(index: int) -> HTMLResponse:
        messages = catcher.snapshot()
        if not 0 <= index < len(messages):
            raise HTTPException(404, "no such message")
        part = messages[index].get_body(("html", "plain"))
        body = part.get_content() if part is not None else ""
        if part is None or part.get_content_subtype() != "html":
            return HTMLResponse(f"<pre>{html.escape(body)}</pre>")
        # The merchant reading their own demo mail is not the customer opening it: no open pixel.
        return HTMLResponse(OPEN_PIXEL.sub("", body))

    return router


def _waiting(runtime: RuntimeDep, session: SessionDep) -> str:
    """Say what is held back and until when, so a quiet demo at night is not a mystery."""
    now = runtime.clock.now()
    count, first = session.execute(select(func.count(), func.min(Message.scheduled_at)).where(
        col(Message.status) == MessageStatus.pending, col(Message.scheduled_at) > now)).one()
    if not count:
        return ""
    shop = session.execute(select(Shop)).scalars().first()
    zone = ZoneInfo(shop.timezone if shop else "Asia/Tokyo")
    first = as_utc(first)  # SQLite's min() loses the zone
    when = first.astimezone(zone).strftime("%m/%d %H:%M")
    return (f"<p>{count} 通は配信待ちです（深夜 21:00〜8:00 の配信停止、または 24 時間に 1 通の上限による）。"
            f"次の配信: {when} / {count} messages are waiting for quiet hours (21:00–08:00) or the one-per-24-h cap; "
            f"next at {when} shop time.</p>")

"""Demo-only pages: log in as the sandbox merchant, read the emails the catcher received."""
from __future__ import annotations

import html

from fastapi import APIRouter, HTTPException
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import select

from plugin.deps import SESSION_COOKIE, RuntimeDep, SessionDep, session_cookie
from plugin.mailcatcher import MailCatcher
from plugin.models import InstallState, Shop

__all__ = ["demo_router"]


def demo_router(catcher: MailCatcher) -> APIRouter:
    router = APIRouter(prefix="/demo")

    @router.get("/login")
    def login(runtime: RuntimeDep, session: SessionDep) -> RedirectResponse:
        shop = session.execute(select(Shop).where(Shop.state == InstallState.active)).scalars().first()
        if shop is None:
            raise HTTPException(409, "the sandbox shop is still being installed; retry in a few seconds")
        response = RedirectResponse("/app/settings", status_code=303)
        response.set_cookie(SESSION_COOKIE, session_cookie(runtime, shop.id or 0), httponly=True, samesite="lax")
        return response

    @router.get("/outbox", response_class=HTMLResponse)
    def outbox() -> HTMLResponse:
        rows = "".join(
            f"<tr><td>{html.escape(str(m['Date']))}</td><td>{html.escape(str(m['To']))}</td>"
            f"<td><a href='/demo/outbox/{i}'>{html.escape(str(m['Subject']))}</a></td></tr>"
            for i, m in reversed(list(enumerate(catcher.snapshot())))
        )
        return HTMLResponse(
            "<!doctype html><meta charset='utf-8'><title>Okaeri demo outbox</title>"
            "<body style='font-family:sans-serif;max-width:960px;margin:2rem auto'>"
            f"<h1>受信したメール / Delivered emails ({len(catcher.snapshot())})</h1>"
            f"<table><tr><th>Date</th><th>To</th><th>Subject</th></tr>{rows}</table></body>")

    @router.get("/outbox/{index}", response_class=HTMLResponse)
    def message(index: int) -> HTMLResponse:
        messages = catcher.snapshot()
        if not 0 <= index < len(messages):
            raise HTTPException(404, "no such message")
        part = messages[index].get_body(("html", "plain"))
        body = part.get_content() if part is not None else ""
        return HTMLResponse(body if part is not None and part.get_content_subtype() == "html"
                            else f"<pre>{html.escape(body)}</pre>")

    return router

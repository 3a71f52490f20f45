"""Demo-only pages: log in as the sandbox merchant, read the emails the catcher received. They
share the console's look (its base template and stylesheet) and show times in the shop's zone."""
from __future__ import annotations

import re
from datetime import datetime
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import ChoiceLoader, Environment, PackageLoader, select_autoescape
from sqlalchemy import func, select
from sqlmodel import Session, col

from plugin.clock import as_utc
from plugin.demo.mailcatcher import MailCatcher
from plugin.storage.models import InstallState, Message, MessageStatus, Shop
from plugin.web.deps import SESSION_COOKIE, RuntimeDep, SessionDep, session_cookie
from plugin.web.i18n import request_lang, texts

__all__ = ["demo_router", "OPEN_PIXEL"]

OPEN_PIXEL = re.compile(r"<img [^>]*src=\"[^\"]*/t/o/[^\"]*\"[^>]*>")
DEFAULT_ZONE = "Asia/Tokyo"


def demo_router(catcher: MailCatcher) -> APIRouter:
    router = APIRouter(prefix="/demo")

    @router.get("/login")
    def login(runtime: RuntimeDep, session: SessionDep) -> RedirectResponse:
        shop = session.execute(select(Shop).where(col(Shop.state) == InstallState.active)).scalars().first()
        if shop is None:
            raise HTTPException(409, "the sandbox shop is still being installed; retry in a few seconds")
        response = RedirectResponse("/app/", status_code=303)  # the dashboard, as after an install
        response.set_cookie(SESSION_COOKIE, session_cookie(runtime, shop.id or 0), httponly=True, samesite="lax")
        return response

    @router.get("/outbox", response_class=HTMLResponse)
    def outbox(request: Request, runtime: RuntimeDep, session: SessionDep) -> HTMLResponse:
        zone = _zone(session)
        mails = [{"index": i, "date": _local(m, zone), "to": str(m["To"] or ""), "subject": str(m["Subject"] or "")}
                 for i, m in reversed(list(enumerate(catcher.snapshot())))]
        return _page(request, "outbox.html", mails=mails, waiting=_waiting(runtime, session, zone), zone=zone)

    @router.get("/outbox/{index}", response_class=HTMLResponse)
    def message(index: int, request: Request) -> HTMLResponse:
        messages = catcher.snapshot()
        if not 0 <= index < len(messages):
            raise HTTPException(404, "no such message")
        mail = messages[index]
        part = mail.get_body(("html", "plain"))
        body = part.get_content() if part is not None else ""
        html_body = part is not None and part.get_content_subtype() == "html"
        runtime = getattr(request.app.state, "runtime", None)
        zone = DEFAULT_ZONE
        if runtime is not None:
            with runtime.sessions() as session:
                zone = _zone(session)
        # The merchant reading their own demo mail is not the customer opening it: no open pixel.
        return _page(request, "mail.html", index=index, subject=str(mail["Subject"] or ""), to=str(mail["To"] or ""),
                     date=_local(mail, zone), zone=zone, html_body=html_body,
                     body=('<base target="_blank">' + OPEN_PIXEL.sub("", body)) if html_body else body)

    return router


@cache
def _env() -> Environment:
    loader = ChoiceLoader([PackageLoader("plugin.demo", "templates"), PackageLoader("plugin.web", "templates")])
    return Environment(loader=loader, autoescape=select_autoescape(default=True))


def _page(request: Request, name: str, **variables: Any) -> HTMLResponse:
    lang = request_lang(request)
    return HTMLResponse(_env().get_template(name).render(t=texts(lang), lang=lang, **variables))


def _zone(session: Session) -> str:
    """The demo shop's time zone (the one installed shop; Tokyo until it is installed)."""
    zone = session.execute(select(col(Shop.timezone)).order_by(col(Shop.id))).scalars().first()
    return zone or DEFAULT_ZONE


def _local(mail: EmailMessage, zone: str) -> str:
    """The mail's Date header in the shop's zone."""
    try:
        sent: datetime = parsedate_to_datetime(str(mail["Date"]))
    except (TypeError, ValueError):
        return ""
    if sent.tzinfo is None:
        return sent.strftime("%Y-%m-%d %H:%M")
    return sent.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M")


def _waiting(runtime: RuntimeDep, session: SessionDep, zone: str) -> dict[str, Any] | None:
    """What is held back and until when, so a quiet demo at night is not a mystery."""
    now = runtime.clock.now()
    count, first = session.execute(select(func.count(), func.min(Message.scheduled_at)).where(
        col(Message.status) == MessageStatus.pending, col(Message.scheduled_at) > now)).one()
    if not count:
        return None
    first = as_utc(first)  # SQLite's min() loses the zone
    return {"count": count, "when": first.astimezone(ZoneInfo(zone)).strftime("%m/%d %H:%M")}

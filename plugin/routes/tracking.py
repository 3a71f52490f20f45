"""Links in messages: unsubscribe (confirm page and RFC 8058 one-click POST, no login), the
open pixel and signed click redirects."""
from __future__ import annotations

import base64

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from plugin.crypto import BadSignature
from plugin.deps import Lang, RuntimeDep, SessionDep
from plugin.i18n import texts
from plugin.models import Customer, Message, MessageEvent, Shop
from plugin.pages import render_page
from plugin.suppression import suppress

router = APIRouter()
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")


def _decode(runtime: RuntimeDep, token: str) -> dict[str, object] | None:
    try:
        value = runtime.signer.loads(token, "unsubscribe")
    except BadSignature:
        return None
    return value if isinstance(value, dict) else None


@router.get("/u/{token}", response_class=HTMLResponse)
def unsubscribe_page(token: str, runtime: RuntimeDep, session: SessionDep, lang: Lang) -> HTMLResponse:
    """Shows a button; GET changes nothing (mail scanners prefetch links)."""
    t, data = texts(lang), _decode(runtime, token)
    shop = session.get(Shop, data["s"]) if data else None
    if shop is None:
        return render_page("message.html", lang, 400, title=t["unsubscribe_title"], message=t["invalid_link"])
    return render_page("message.html", lang, title=t["unsubscribe_title"],
                       message=t["unsubscribe_ask"].format(shop=shop.name),
                       form_action=f"/u/{token}", button=t["unsubscribe_button"])


@router.post("/u/{token}", response_class=HTMLResponse)
def unsubscribe(token: str, runtime: RuntimeDep, session: SessionDep, lang: Lang) -> HTMLResponse:
    t, data = texts(lang), _decode(runtime, token)
    customer = session.get(Customer, data["c"]) if data else None
    shop = session.get(Shop, data["s"]) if data else None
    if customer is None or shop is None or customer.shop_id != shop.id:
        return render_page("message.html", lang, 400, title=t["unsubscribe_title"], message=t["invalid_link"])
    now = runtime.clock.now()
    suppress(session, shop.id or 0, "email", customer.email, "unsubscribed", now, source="unsubscribe link")
    message_id = session.execute(
        select(Message.id).where(Message.rfc_message_id == data["m"])  # type: ignore[index]
    ).scalar_one_or_none()
    if message_id is not None:
        session.add(MessageEvent(shop_id=shop.id, message_id=message_id, kind="unsubscribe", occurred_at=now))
    session.commit()
    return render_page("message.html", lang, title=t["unsubscribe_title"],
                       message=t["unsubscribed"].format(shop=shop.name))


def _event(session: SessionDep, runtime: RuntimeDep, message_id: int, kind: str, url: str = "") -> None:
    message = session.get(Message, message_id)
    if message is not None:
        session.add(MessageEvent(shop_id=message.shop_id, message_id=message_id, kind=kind, url=url[:1000],
                                 occurred_at=runtime.clock.now()))
        session.commit()


@router.get("/t/o/{token}.gif")
def opened(token: str, runtime: RuntimeDep, session: SessionDep) -> Response:
    try:
        _event(session, runtime, int(runtime.signer.loads(token, "open")), "open")  # type: ignore[call-overload]
    except (BadSignature, TypeError, ValueError):
        pass  # a pixel never errors: the image still loads
    return Response(PIXEL, media_type="image/gif", headers={"Cache-Control": "no-store"})


@router.get("/t/c/{token}")
def clicked(token: str, runtime: RuntimeDep, session: SessionDep, lang: Lang) -> Response:
    try:
        data = runtime.signer.loads(token, "click")
        message_id, url = int(data["m"]), str(data["u"])  # type: ignore[index]
    except (BadSignature, KeyError, TypeError, ValueError):
        t = texts(lang)
        return render_page("message.html", lang, 400, title="Okaeri", message=t["invalid_link"])
    _event(session, runtime, message_id, "click", url)
    return RedirectResponse(url, status_code=302)

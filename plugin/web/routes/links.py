"""Links in messages: unsubscribe (confirm page and RFC 8058 one-click POST, no login), the
open pixel and signed click redirects."""
from __future__ import annotations

import base64

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from plugin.channels.email import EmailChannel
from plugin.delivery.drafts import PREVIEW_UNSUBSCRIBE
from plugin.measurement.links import (
    read_unsubscribe_token,
    valid_click,
    valid_open,
    visitor_proof,
    with_visitor_proof,
)
from plugin.storage.consent import suppress
from plugin.storage.models import Customer, Message, MessageEvent, Shop
from plugin.storage.rollup import count_event
from plugin.web.deps import Lang, RuntimeDep, SessionDep
from plugin.web.i18n import texts
from plugin.web.ratelimit import TrackingLimit, UnsubscribeLimit
from plugin.web.templating import render_page
from scenarios.base import same_site

router = APIRouter()
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")


def _preview_page(lang: str) -> HTMLResponse:
    t = texts(lang)
    return render_page("message.html", lang, title=t["unsubscribe_title"], message=t["preview_unsubscribe"])


@router.get("/u/{token}", response_class=HTMLResponse, dependencies=[UnsubscribeLimit])
def unsubscribe_page(token: str, runtime: RuntimeDep, session: SessionDep, lang: Lang) -> HTMLResponse:
    """Shows a button; GET changes nothing (mail scanners prefetch links)."""
    if token == PREVIEW_UNSUBSCRIBE:
        return _preview_page(lang)
    t, data = texts(lang), read_unsubscribe_token(runtime, token)
    shop = session.get(Shop, data["s"]) if data else None
    if shop is None:
        return render_page("message.html", lang, 400, title=t["unsubscribe_title"], message=t["invalid_link"])
    return render_page("message.html", lang, title=t["unsubscribe_title"],
                       message=t["unsubscribe_ask"].format(shop=shop.name),
                       form_action=f"/u/{token}", button=t["unsubscribe_button"])


@router.post("/u/{token}", response_class=HTMLResponse, dependencies=[UnsubscribeLimit])
def unsubscribe(token: str, runtime: RuntimeDep, session: SessionDep, lang: Lang) -> HTMLResponse:
    if token == PREVIEW_UNSUBSCRIBE:
        return _preview_page(lang)
    t, data = texts(lang), read_unsubscribe_token(runtime, token)
    customer = session.get(Customer, data["c"]) if data else None
    shop = session.get(Shop, data["s"]) if data else None
    if data is None or customer is None or shop is None or customer.shop_id != shop.id:
        return render_page("message.html", lang, 400, title=t["unsubscribe_title"], message=t["invalid_link"])
    now = runtime.clock.now()
    message_id = data["m"]
    message = session.get(Message, message_id) if message_id else None
    if message is not None and (message.shop_id, message.customer_id) != (shop.id, customer.id):
        message = None
    # The link unsubscribes from the channel and address its message went to; a link not from a
    # message (0) is the mail footer's.
    channel, address = (message.channel, message.to_address) if message else (EmailChannel.name, customer.email)
    suppress(session, shop.id or 0, channel, address, "unsubscribed", now, source="unsubscribe link")
    if message is not None:
        session.add(MessageEvent(shop_id=shop.id or 0, message_id=message.id or 0, kind="unsubscribe", occurred_at=now))
    session.commit()
    return render_page("message.html", lang, title=t["unsubscribe_title"],
                       message=t["unsubscribed"].format(shop=shop.name))


def _event(session: SessionDep, runtime: RuntimeDep, message_id: int, kind: str, url: str = "") -> None:
    message = session.get(Message, message_id)
    if message is not None:
        count_event(session, message, kind)
        session.add(MessageEvent(shop_id=message.shop_id, message_id=message_id, kind=kind, url=url[:1000],
                                 occurred_at=runtime.clock.now()))
        session.commit()


@router.get("/t/o/{message_id}/{tag}.gif", dependencies=[TrackingLimit])
def opened(message_id: int, tag: str, runtime: RuntimeDep, session: SessionDep) -> Response:
    if valid_open(runtime, message_id, tag):  # a pixel never errors: the image loads either way
        _event(session, runtime, message_id, "open")
    return Response(PIXEL, media_type="image/gif", headers={"Cache-Control": "no-store"})


@router.get("/t/c/{message_id}/{tag}", dependencies=[TrackingLimit])
def clicked(message_id: int, tag: str, runtime: RuntimeDep, session: SessionDep, lang: Lang, u: str = "") -> Response:
    if not u or not valid_click(runtime, message_id, tag, u):
        t = texts(lang)
        return render_page("message.html", lang, 400, title="Okaeri", message=t["invalid_link"])
    _event(session, runtime, message_id, "click", u)
    return RedirectResponse(_landing(session, runtime, message_id, u), status_code=302)


def _landing(session: SessionDep, runtime: RuntimeDep, message_id: int, url: str) -> str:
    """A link back to the shop carries the signed visitor proof for the shop's storefront script;
    a link anywhere else never does (the proof is only the shop's to read)."""
    message = session.get(Message, message_id)
    shop = session.get(Shop, message.shop_id) if message is not None else None
    if message is None or shop is None or not same_site(url, shop.domain):
        return url
    return with_visitor_proof(url, visitor_proof(runtime, shop.id or 0, message.customer_id, runtime.clock.now()))

"""The scenario page (/app/scenarios/{key}): settings with defaults, per-step numbers, the queue
and why each message waits, recent sends, preview for any customer and a test send that comes
back to the page saying what it did."""
from __future__ import annotations

import math
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool

from plugin.channels.base import OutgoingMessage, PermanentFailure, TemporaryFailure
from plugin.channels.email import EmailChannel
from plugin.console import scenario_page as queries
from plugin.console.forms import SettingError
from plugin.console.recommender_view import recommender_line
from plugin.console.scenarios import TemplateRefused, preview, scenario_overview, set_scenario
from plugin.crypto import BadSignature
from plugin.delivery.drafts import preview_unsubscribe_url
from plugin.runtime import Runtime
from plugin.storage.db import MAX_ROW_ID
from plugin.storage.models import Shop
from plugin.web.deps import CurrentShop, Lang, RuntimeDep, SessionDep
from plugin.web.errors import AppError, in_language
from plugin.web.i18n import texts
from plugin.web.rendering import off_loop
from plugin.web.routes.console import _check_csrf, _csrf, _known
from plugin.web.scenario_texts import scenario_texts
from plugin.web.templating import render_page
from scenarios import get_scenario

router = APIRouter(prefix="/app")
TEST_PREFIX = "[テスト送信] "
CustomerId = Annotated[int | None, Query(ge=1, le=MAX_ROW_ID)]
Form_ = dict[str, str]


def _pair(lang: str, text: str) -> str:
    """The part of a "日本語 / English" message in the page's language."""
    japanese, english = in_language(text)
    return english if lang == "en" else japanese


@router.get("/scenarios/{key}", response_class=HTMLResponse)
async def scenario_page(key: str, shop: CurrentShop, session: SessionDep, runtime: RuntimeDep, lang: Lang,
                        page: Annotated[int, Query(ge=1, le=100_000)] = 1,
                        q: Annotated[str, Query(max_length=100)] = "", customer: CustomerId = None,
                        saved: str = "", sent: Annotated[str, Query(max_length=1000)] = "") -> HTMLResponse:
    notice = scenario_texts(lang)["saved"] if saved else ""
    return await _page(runtime, session, shop, _known(key), lang, page=page, q=q, customer=customer, notice=notice,
                       sent=_sent_notice(runtime, shop, lang, sent))


@router.post("/scenarios/{key}", response_model=None)
async def save_scenario(key: str, request: Request, shop: CurrentShop, session: SessionDep, runtime: RuntimeDep,
                        lang: Lang) -> RedirectResponse | HTMLResponse:
    """Save the preset's settings; a refusal comes back on this page, as typed, saying why."""
    form: Form_ = {k: str(v) for k, v in (await request.form()).items()}
    _check_csrf(runtime, shop.id or 0, form.get("csrf", ""))
    try:  # the save check renders the merchant's templates: never on the event loop
        await off_loop(set_scenario, session, shop, _known(key), form, runtime.clock.now(), runtime)
    except TemplateRefused as exc:
        return await _refused(runtime, session, shop, key, lang, exc.explain(lang), form)
    except SettingError as exc:
        return await _refused(runtime, session, shop, key, lang, _pair(lang, str(exc)), form)
    session.commit()
    return RedirectResponse(f"/app/scenarios/{key}?saved=1#settings", status_code=303)


async def _refused(runtime: Runtime, session: SessionDep, shop: Shop, key: str, lang: str, reason: str,
                   form: Form_) -> HTMLResponse:
    session.rollback()
    session.refresh(shop)
    return await _page(runtime, session, shop, key, lang, status=422, form_error=reason, typed=form)


@router.get("/scenarios/{key}/preview", response_class=HTMLResponse)
async def preview_mail(key: str, shop: CurrentShop, session: SessionDep, runtime: RuntimeDep, lang: Lang,
                       customer: CustomerId = None, part: str = "html") -> HTMLResponse:
    """The mail as the customer would get it (the page's iframe); nothing is written or sent."""
    try:
        who, subject, text, html = await off_loop(preview, runtime, session, shop, _known(key), customer)
    except TemplateRefused as exc:
        return render_page("message.html", lang, 422, title=texts(lang)["preview"], message=exc.explain(lang))
    except SettingError as exc:
        raise AppError(404, "setting_refused", reason=in_language(str(exc))) from None
    if part == "text":
        import html as markup

        return HTMLResponse(f"<pre>{markup.escape(subject)}\n\n{markup.escape(text)}</pre>")
    return HTMLResponse(html, headers={"X-Preview-Customer": str(who.id), "Content-Security-Policy": "script-src 'none'"})


@router.get("/settings/scenarios/{key}/preview", include_in_schema=False)
def old_preview(key: str, request: Request) -> RedirectResponse:
    """The preview's first address, kept working."""
    query = f"?{request.url.query}" if request.url.query else ""
    return RedirectResponse(f"/app/scenarios/{_known(key)}/preview{query}", status_code=307)


@router.post("/scenarios/{key}/test-send", response_model=None)
@router.post("/settings/scenarios/{key}/test-send", response_model=None, include_in_schema=False)
async def test_send(key: str, shop: CurrentShop, session: SessionDep, runtime: RuntimeDep, lang: Lang,
                    csrf: Annotated[str, Form()],
                    customer: Annotated[int | None, Form(ge=1, le=MAX_ROW_ID)] = None) -> RedirectResponse | HTMLResponse:
    """Send one customer's mail to the merchant's own address (no scenario message is written), then
    back to the scenario page saying so; a failure is said on that page and nothing is sent."""
    _check_csrf(runtime, shop.id or 0, csrf)
    words = scenario_texts(lang)
    if not shop.owner_email:
        return await _page(runtime, session, shop, _known(key), lang, status=422, customer=customer,
                           test_error=words["no_owner_email"])
    try:
        who, subject, text, html = await off_loop(preview, runtime, session, shop, _known(key), customer)
        # the merchant's contact is an email address, whatever channel the preset sends on
        await run_in_threadpool(runtime.channels[EmailChannel.name].send, OutgoingMessage(
            message_id=f"<test-{uuid.uuid4().hex}@okaeri>", to_address=shop.owner_email, to_name=shop.name,
            from_name=shop.sender_name or shop.name, subject=f"{TEST_PREFIX}{subject}", body_text=text, body_html=html,
            unsubscribe_url=preview_unsubscribe_url(runtime)))
    except TemplateRefused as exc:
        return await _page(runtime, session, shop, key, lang, status=422, customer=customer, test_error=exc.explain(lang))
    except SettingError as exc:
        return await _page(runtime, session, shop, key, lang, status=422, customer=None, test_error=_pair(lang, str(exc)))
    except (TemporaryFailure, PermanentFailure):
        return await _page(runtime, session, shop, key, lang, status=502, customer=customer, test_error=words["mail_refused"])
    token = runtime.signer.dumps({"shop": shop.id, "to": shop.owner_email, "customer": who.id, "name": who.name,
                                  "subject": f"{TEST_PREFIX}{subject}"[:200]}, "test-sent")
    return RedirectResponse(f"/app/scenarios/{key}?customer={who.id}&sent={token}#preview", status_code=303)


def _sent_notice(runtime: Runtime, shop: Shop, lang: str, token: str) -> str:
    """The confirmation of a test send, from the signed note the redirect carried ("" if none or forged)."""
    if not token:
        return ""
    try:
        note = runtime.signer.loads(token, "test-sent")
    except BadSignature:
        return ""
    if not isinstance(note, dict) or note.get("shop") != shop.id:
        return ""
    return scenario_texts(lang)["test_sent"].format(email=note.get("to", ""), name=note.get("name", ""),
                                                    subject=note.get("subject", ""))


async def _page(runtime: Runtime, session: SessionDep, shop: Shop, key: str, lang: str, *, status: int = 200,
                page: int = 1, q: str = "", customer: int | None = None, notice: str = "", sent: str = "",
                form_error: str = "", typed: Form_ | None = None, test_error: str = "") -> HTMLResponse:
    """Render the scenario page: the figures from SQL in the server's threads, the preview in the
    console's rendering threads."""
    view = await run_in_threadpool(_figures, runtime, session, shop, key, lang, page, q, customer)
    shown = await _preview_check(runtime, session, shop, key, lang, view["customer"])
    return render_page("scenario.html", lang, status, shop=shop, key=key, st=scenario_texts(lang), csrf=_csrf(runtime, shop.id or 0),
                       notice=notice, sent=sent, form_error=form_error, typed=typed, test_error=test_error, q=q,
                       preview=shown, **view)


def _figures(runtime: Runtime, session: SessionDep, shop: Shop, key: str, lang: str, page: int, q: str,
             customer_id: int | None) -> dict[str, Any]:
    now = runtime.clock.now()
    scenario = get_scenario(key)
    row = next(r for r in scenario_overview(session, shop, lang, only=key) if r["key"] == key)
    total = queries.queue_total(session, shop, key)
    pages = max(1, math.ceil(total / queries.QUEUE_PAGE))
    chosen = queries.customer_of(session, shop, customer_id) if customer_id else None
    return {"row": row, "scenario_name": scenario.name(lang), "defaults": queries.defaults(scenario, shop),
            "steps": queries.step_numbers(session, shop, key, lang), "queue": queries.queue_page(session, shop, key, now, lang, page),
            "queue_total": total, "page": min(page, pages), "pages": pages,
            "recent": queries.recent_sends(session, shop, key, lang),
            "found": queries.find_customers(session, shop, q) if q.strip() else [],
            "customer": chosen, "unknown_customer": customer_id if customer_id and chosen is None else None,
            "recommender": recommender_line(session, shop, lang) if key == "recommendation" else None}


async def _preview_check(runtime: Runtime, session: SessionDep, shop: Shop, key: str, lang: str,
                         customer: Any) -> dict[str, Any]:
    """The chosen customer's subject, or why their mail cannot be shown (the iframe shows the body)."""
    if customer is None:
        return {}
    try:
        _, subject, _, _ = await off_loop(preview, runtime, session, shop, key, customer.id)
    except TemplateRefused as exc:
        return {"error": exc.explain(lang)}
    except SettingError as exc:
        return {"error": _pair(lang, str(exc))}
    return {"subject": subject}

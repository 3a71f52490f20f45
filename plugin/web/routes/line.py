"""LINE over HTTP: the webhook of each account (POST /line/webhook/{key}), the page of a mailed
link code (GET /line/link/{token}) and the console's LINE page (/app/line)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from sqlalchemy import select
from sqlmodel import Session, col

from plugin.console.forms import SettingError
from plugin.console.line_accounts import (
    LINK_PURPOSE,
    accounts_of,
    add_account,
    channel_rule_choice,
    choose_account,
    link_url,
    remove_account,
    resume_account,
    scenario_accounts,
    send_link_invite,
    set_channel_rule,
)
from plugin.crypto import BadSignature as BadLinkSignature
from plugin.runtime import Runtime
from plugin.storage.db import MAX_ROW_ID
from plugin.storage.models import LineAccount, Shop
from plugin.web.deps import CurrentShop, Lang, RuntimeDep, SessionDep
from plugin.web.errors import AppError
from plugin.web.line_webhook import BadWebhook, handle_events, valid_signature
from plugin.web.routes.console import _check_csrf, _csrf
from plugin.web.templating import render_page
from scenarios import by_priority

__all__ = ["router", "link_url", "LINK_PURPOSE"]

router = APIRouter()
MAX_BODY = 1_000_000


@router.post("/line/webhook/{key}", include_in_schema=True)
async def line_webhook(key: Annotated[str, Path(max_length=64)], request: Request, runtime: RuntimeDep,
                       session: SessionDep) -> JSONResponse:
    """LINE's events for one account: 401 unless signed with its channel secret."""
    account = session.execute(select(LineAccount).where(col(LineAccount.webhook_key) == key)).scalar_one_or_none()
    body = await request.body()
    if account is None:
        raise AppError(404, "unknown_shop", reason="unknown LINE webhook")
    if len(body) > MAX_BODY:
        raise AppError(413, "unreadable_json")
    if not valid_signature(runtime.cipher.decrypt(account.secret_encrypted), body,
                           request.headers.get("x-line-signature", "")):
        raise AppError(401, "invalid_signature")
    try:
        counts = handle_events(runtime, session, account, body)
    except BadWebhook as exc:
        raise AppError(400, "unreadable_json") from exc
    return JSONResponse({"ok": True, **counts})


_LINK_TEXT = {
    "ja": {"title": "LINE 連携", "intro": "LINE 公式アカウント「{name}」を友だち追加し、次のコードをトーク画面で送信してください。",
           "button": "LINE でコードを送る", "expired": "このリンクは使用済みか、有効期限が切れています。"},
    "en": {"title": "Link LINE", "intro": "Add the LINE Official Account “{name}” as a friend and send it this code in the chat.",
           "button": "Send the code in LINE", "expired": "This link was used already or has expired."},
}


@router.get("/line/link/{token}", response_class=HTMLResponse)
def link_page(token: Annotated[str, Path(max_length=500)], runtime: RuntimeDep, session: SessionDep, lang: Lang) -> HTMLResponse:
    """The mailed link's page: the code to send to the account inside LINE (that is where it links)."""
    from plugin.channels.line_links import find_code
    from plugin.clock import as_utc

    try:
        value = runtime.signer.loads(token, LINK_PURPOSE)
    except BadLinkSignature as exc:
        raise AppError(400, "invalid_link") from exc
    code = str(value.get("code", "")) if isinstance(value, dict) else ""
    row = find_code(session, code)
    words = _LINK_TEXT["en" if lang == "en" else "ja"]
    account = session.get(LineAccount, row.account_id) if row is not None else None
    if row is None or account is None or row.used_at is not None or as_utc(row.expires_at) <= runtime.clock.now():
        return render_page("message.html", lang, 410, title=words["title"], message=words["expired"])
    text = f"OKAERI-{code}"
    deep_link = f"https://line.me/R/oaMessage/{quote(account.basic_id)}/?{quote(text)}" if account.basic_id else ""
    return render_page("line_link.html", lang, title=words["title"], intro=words["intro"].format(name=account.display_name or account.name),
                       code=text, deep_link=deep_link, button=words["button"])


# -- the console's LINE page ---------------------------------------------------------------------


def line_page(shop: Shop, session: Session, runtime: Runtime, lang: str, *, status: int = 200, error: str = "",
              done: str = "") -> HTMLResponse:
    rule, follow_up = channel_rule_choice(runtime, session, shop)
    return render_page("line.html", lang, status, shop=shop, nav_active="line", accounts=accounts_of(runtime, session, shop),
                       csrf=_csrf(runtime, shop.id or 0), error=error, done=done, rule=rule, follow_up=follow_up,
                       scenarios=[(s.key, s.name(lang)) for s in by_priority()], chosen=scenario_accounts(session, shop))


def _in(lang: str, text: str) -> str:
    japanese, _, english = text.partition(" / ")
    return english if lang == "en" and english else japanese


async def _form(request: Request, runtime: Runtime, shop: Shop) -> dict[str, str]:
    form = {k: str(v) for k, v in (await request.form()).items()}
    _check_csrf(runtime, shop.id or 0, form.get("csrf", ""))
    return form


def _saved(action: Callable[[], object], shop: Shop, session: Session, runtime: Runtime, lang: str,
           done: str) -> RedirectResponse | HTMLResponse:
    """Run one of the page's forms: back to the page saying `done`, or the page again (422) with
    the refusal in the merchant's language and nothing of it kept."""
    try:
        action()
    except SettingError as exc:
        session.rollback()
        return line_page(shop, session, runtime, lang, status=422, error=_in(lang, str(exc)))
    return RedirectResponse(f"/app/line?done={done}", status_code=303)


@router.get("/app/line", response_class=HTMLResponse)
def show_line(shop: CurrentShop, session: SessionDep, runtime: RuntimeDep, lang: Lang, done: str = "") -> HTMLResponse:
    return line_page(shop, session, runtime, lang, done=done[:32])


@router.post("/app/line/accounts", response_model=None)
async def create_account(request: Request, shop: CurrentShop, session: SessionDep, runtime: RuntimeDep,
                         lang: Lang) -> RedirectResponse | HTMLResponse:
    """Add an account once LINE accepted its token; the page then shows its webhook URL."""
    form = await _form(request, runtime, shop)
    return _saved(lambda: add_account(runtime, session, shop, form), shop, session, runtime, lang, "added")


@router.post("/app/line/accounts/{account_id}/resume", response_model=None)
async def resume(request: Request, shop: CurrentShop, session: SessionDep, runtime: RuntimeDep, lang: Lang,
                 account_id: Annotated[int, Path(ge=1, le=MAX_ROW_ID)]) -> RedirectResponse | HTMLResponse:
    form = await _form(request, runtime, shop)
    return _saved(lambda: resume_account(runtime, session, shop, account_id, form), shop, session, runtime, lang, "resumed")


@router.post("/app/line/accounts/{account_id}/remove", response_model=None)
async def remove(request: Request, shop: CurrentShop, session: SessionDep, runtime: RuntimeDep, lang: Lang,
                 account_id: Annotated[int, Path(ge=1, le=MAX_ROW_ID)]) -> RedirectResponse | HTMLResponse:
    """Disconnect an account: its links end, its waiting messages are cancelled (the console says so)."""
    await _form(request, runtime, shop)  # its form token
    return _saved(lambda: remove_account(runtime, session, shop, account_id), shop, session, runtime, lang, "removed")


@router.post("/app/line/rule", response_model=None)
async def channel_rule(request: Request, shop: CurrentShop, session: SessionDep, runtime: RuntimeDep,
                       lang: Lang) -> RedirectResponse | HTMLResponse:
    form = await _form(request, runtime, shop)

    def save() -> None:
        set_channel_rule(runtime, session, shop, form, runtime.clock.now())
        for scenario in by_priority():
            if f"account_{scenario.key}" in form:
                choose_account(session, shop, scenario.key, form[f"account_{scenario.key}"])

    return _saved(save, shop, session, runtime, lang, "rule")


@router.post("/app/line/invite/{customer_id}", response_model=None)
async def invite(request: Request, shop: CurrentShop, session: SessionDep, runtime: RuntimeDep, lang: Lang,
                 customer_id: Annotated[int, Path(ge=1, le=MAX_ROW_ID)]) -> RedirectResponse:
    """Mail this customer a signed one-time link that links their LINE (confirmed inside LINE)."""
    await _form(request, runtime, shop)
    send_link_invite(runtime, session, shop, customer_id)  # a refusal is a SettingError: 422 with the reason
    return RedirectResponse(f"/app/customers/{customer_id}?line_invite=sent#consent", status_code=303)

"""The shop rules page (/app/rules): quiet hours and the cap, the sender name and default holdout,
product-code grouping rules with their previews, and the point expiry months. Every form comes
back to the page saying what it did; a refusal is said on the page, in the merchant's language (422)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlmodel import Session

from plugin.console.forms import SettingError
from plugin.console.grouping import PREVIEW_ROWS, RulePreview, add_rule, preview_codes, remove_rule, rule_previews
from plugin.console.shop_rules import set_point_expiry, set_sending_rules, set_shop_rules
from plugin.platforms import UnknownPlatform
from plugin.runtime import Runtime
from plugin.storage.db import MAX_ROW_ID
from plugin.storage.models import Shop
from plugin.web.deps import CurrentShop, Lang, RuntimeDep, SessionDep
from plugin.web.routes.console import _check_csrf, _csrf
from plugin.web.rules_texts import DONE, rules_texts
from plugin.web.templating import render_page

__all__ = ["router", "rules_page"]

router = APIRouter(prefix="/app")
Setter = Callable[[Session, Shop, dict[str, str]], Shop]


def _in(lang: str, text: str) -> str:
    """The part of a "日本語 / English" message in the page's language."""
    japanese, _, english = text.partition(" / ")
    return english if lang == "en" and english else japanese


def _platform_title(runtime: Runtime, shop: Shop) -> tuple[str, bool]:
    """The platform's name, and whether its data lacks expiry dates (the months rule applies)."""
    try:
        platform = runtime.platforms.get(shop.platform)
    except UnknownPlatform:
        return shop.platform, False
    return platform.title or shop.platform, platform.points_expire_after is not None


def rules_page(shop: Shop, session: Session, runtime: Runtime, lang: str, *, status: int = 200, done: str = "",
               errors: dict[str, str] | None = None, draft: dict[str, str] | None = None,
               draft_preview: RulePreview | None = None) -> HTMLResponse:
    """The page, with what a form did (`done`) or why it was refused (`errors`, by section)."""
    platform, derived = _platform_title(runtime, shop)
    said = DONE.get(done)
    return render_page("rules.html", lang, status, shop=shop, r=rules_texts(lang), csrf=_csrf(runtime, shop.id or 0),
                       previews=rule_previews(session, shop), preview_rows=PREVIEW_ROWS, errors=errors or {},
                       done=said[1 if lang == "en" else 0] if said else "", draft=draft or {},
                       draft_preview=draft_preview, platform=platform, expiry_derived=derived)


async def _form(request: Request, runtime: Runtime, shop: Shop) -> dict[str, str]:
    form = {k: str(v) for k, v in (await request.form()).items()}
    _check_csrf(runtime, shop.id or 0, form.get("csrf", ""))
    return form


def _save(setter: Setter, section: str, done: str, form: dict[str, str], shop: Shop, session: Session,
          runtime: Runtime, lang: str) -> RedirectResponse | HTMLResponse:
    """Apply one form; back to the page with a confirmation, or the page with the reason (422)."""
    try:
        setter(session, shop, form)
    except SettingError as exc:
        session.rollback()
        session.refresh(shop)
        return rules_page(shop, session, runtime, lang, status=422, errors={section: _in(lang, str(exc))},
                          draft=form if section == "groups" else None)
    session.commit()
    return RedirectResponse(f"/app/rules?done={done}#{section}", status_code=303)


@router.get("/rules", response_class=HTMLResponse)
def show_rules(shop: CurrentShop, session: SessionDep, runtime: RuntimeDep, lang: Lang, done: str = "") -> HTMLResponse:
    return rules_page(shop, session, runtime, lang, done=done)


@router.post("/settings/rules", response_model=None)
async def shop_rules(request: Request, shop: CurrentShop, session: SessionDep, runtime: RuntimeDep,
                     lang: Lang) -> RedirectResponse | HTMLResponse:
    """Quiet hours and the frequency cap, for every scenario of the shop (the form's first URL, kept)."""
    return _save(set_shop_rules, "rules", "rules", await _form(request, runtime, shop), shop, session, runtime, lang)


@router.post("/rules/sending", response_model=None)
async def sending_rules(request: Request, shop: CurrentShop, session: SessionDep, runtime: RuntimeDep,
                        lang: Lang) -> RedirectResponse | HTMLResponse:
    """The sender name and the default holdout share."""
    return _save(set_sending_rules, "sender", "sending", await _form(request, runtime, shop), shop, session, runtime, lang)


@router.post("/rules/points", response_model=None)
async def point_rules(request: Request, shop: CurrentShop, session: SessionDep, runtime: RuntimeDep,
                      lang: Lang) -> RedirectResponse | HTMLResponse:
    """The point expiry months (recomputes every customer's expiry date)."""
    return _save(set_point_expiry, "points", "points", await _form(request, runtime, shop), shop, session, runtime, lang)


@router.get("/rules/groups/preview", response_class=HTMLResponse)
def preview_group(shop: CurrentShop, session: SessionDep, runtime: RuntimeDep, lang: Lang, codes: str = "",
                  action: str = "merge", group_name: str = "") -> HTMLResponse:
    """The products a rule not yet saved would match, shown under its form (nothing is saved)."""
    draft = {"codes": codes[:8000], "action": action[:8], "group_name": group_name[:200]}
    try:
        found = preview_codes(session, shop, draft)
    except SettingError as exc:
        return rules_page(shop, session, runtime, lang, status=422, errors={"groups": _in(lang, str(exc))}, draft=draft)
    return rules_page(shop, session, runtime, lang, draft=draft, draft_preview=found)


@router.post("/rules/groups", response_model=None)
async def create_group_rule(request: Request, shop: CurrentShop, session: SessionDep, runtime: RuntimeDep,
                            lang: Lang) -> RedirectResponse | HTMLResponse:
    """Add a grouping rule after the others and regroup the shop's products."""
    def add(session: Session, shop: Shop, form: dict[str, str]) -> Shop:
        add_rule(session, shop, form, runtime.clock.now())
        return shop

    return _save(add, "groups", "group_added", await _form(request, runtime, shop), shop, session, runtime, lang)


@router.post("/rules/groups/{rule_id}/delete")
async def delete_group_rule(request: Request, shop: CurrentShop, session: SessionDep, runtime: RuntimeDep,
                            rule_id: Annotated[int, Path(ge=1, le=MAX_ROW_ID)]) -> RedirectResponse:
    """Remove a grouping rule; the products go back to the groups the other rules (or the platform) give."""
    await _form(request, runtime, shop)
    removed = remove_rule(session, shop, rule_id)
    session.commit()
    return RedirectResponse(f"/app/rules?done={'group_removed' if removed else 'group_missing'}#groups", status_code=303)


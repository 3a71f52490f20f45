"""The merchant's pages: settings with the one switch, each preset's tuning, and the reports
(JSON). Preview and test send live on the scenario page (plugin.web.routes.scenario_page)."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from sqlalchemy import select
from sqlmodel import col

from connectors.errors import Unauthorized
from connectors.signatures import same_secret
from plugin.console.forms import SettingError
from plugin.console.scenarios import TemplateRefused, scenario_overview, set_scenario, set_standard_scenarios
from plugin.install.lifecycle import switch_storefront
from plugin.measurement.reports import scenario_report
from plugin.storage.models import InstallState, SyncState
from plugin.storage.point_fields import point_fields
from plugin.sync.store import RESOURCES, held_counts
from plugin.web.deps import CurrentShop, Lang, RuntimeDep, SessionDep, SignedInShop
from plugin.web.errors import AppError, in_language
from plugin.web.install_state import install_state_page
from plugin.web.install_texts import install_texts
from plugin.web.point_field_texts import point_field_texts
from plugin.web.rendering import off_loop
from plugin.web.templating import render_page
from scenarios import SCENARIOS

router = APIRouter(prefix="/app")


def _csrf(runtime: RuntimeDep, shop_id: int) -> str:
    return runtime.signer.dumps({"shop": shop_id}, "csrf")


def _check_csrf(runtime: RuntimeDep, shop_id: int, token: str) -> None:
    if not same_secret(_csrf(runtime, shop_id), token):
        raise AppError(403, "form_expired")


def _known(key: str) -> str:
    if key not in SCENARIOS:
        raise AppError(404, "unknown_scenario", key=key[:100])
    return key


@router.get("/settings", response_class=HTMLResponse)
def settings_page(shop: SignedInShop, session: SessionDep, runtime: RuntimeDep, lang: Lang,
                  error: str = "") -> HTMLResponse:
    """The one switch and every preset; for an install that stopped, why and how to resume."""
    if shop.state != InstallState.active:
        return install_state_page(runtime, shop, lang)
    return _settings(shop, session, runtime, lang, error=error)


def _settings(shop: CurrentShop, session: SessionDep, runtime: RuntimeDep, lang: str, *, error: str = "",
              scenario_error: dict[str, str] | None = None, status: int = 200) -> HTMLResponse:
    scenarios = scenario_overview(session, shop, lang)
    states = {s.resource: s for s in session.execute(
        select(SyncState).where(col(SyncState.shop_id) == shop.id)).scalars()}
    held = held_counts(session, shop.id or 0)
    sync = [{"resource": r, "count": held[r], "last_run_at": states[r].last_run_at if r in states else None}
            for r in RESOURCES]
    return render_page("settings.html", lang, status, shop=shop, scenarios=scenarios, sync=sync, error=error,
                       scenario_error=scenario_error or {},
                       standard_on=any(s["enabled"] for s in scenarios), st=install_texts(lang),
                       csrf=_csrf(runtime, shop.id or 0), points=_points(session, shop, runtime, lang))


def _points(session: SessionDep, shop: CurrentShop, runtime: RuntimeDep, lang: str) -> dict[str, object]:
    """The point-fields section (platforms without native points) and the data-requests link."""
    required = runtime.platforms.get(shop.platform).points_field_required if shop.platform in runtime.platforms else False
    fields = point_fields(session, shop, required)
    return {"required": required, "texts": point_field_texts(lang),
            "balance_field": fields.balance_field if fields else "", "expiry_field": fields.expiry_field if fields else ""}


@router.post("/settings/standard-scenarios")
def switch_standard(shop: CurrentShop, session: SessionDep, runtime: RuntimeDep,
                    enabled: Annotated[str, Form()], csrf: Annotated[str, Form()]) -> RedirectResponse:
    _check_csrf(runtime, shop.id or 0, csrf)
    if enabled not in ("0", "1"):
        raise AppError(422, "enabled_0_1")
    set_standard_scenarios(session, shop, enabled == "1", runtime.clock.now())
    session.commit()
    if enabled == "1":
        runtime.tasks.scenario_tick(shop.id or 0)  # the merchant sees results without waiting a round
    return RedirectResponse("/app/settings", status_code=303)


@router.post("/settings/storefront-script")
def switch_storefront_script(shop: CurrentShop, runtime: RuntimeDep, enabled: Annotated[str, Form()],
                             csrf: Annotated[str, Form()]) -> RedirectResponse:
    """The storefront switch: off removes the script tags from the shop, on places them again."""
    _check_csrf(runtime, shop.id or 0, csrf)
    if enabled not in ("0", "1"):
        raise AppError(422, "enabled_0_1")
    try:
        switch_storefront(runtime, shop.id or 0, enabled == "1")
    except Unauthorized:  # the install is revoked now: the settings page says so
        pass
    return RedirectResponse("/app/settings#storefront", status_code=303)


@router.post("/settings/scenarios/{key}", response_model=None)
async def tune_scenario(key: str, request: Request, shop: CurrentShop, session: SessionDep,
                        runtime: RuntimeDep, lang: Lang) -> RedirectResponse | HTMLResponse:
    """Save one preset's tuning; a template that fails for a sample customer comes back on the
    settings page, at that preset, saying which customer and why, with nothing saved."""
    form = {k: str(v) for k, v in (await request.form()).items()}
    _check_csrf(runtime, shop.id or 0, form.get("csrf", ""))
    try:  # the save check renders the merchant's templates: never on the event loop
        await off_loop(set_scenario, session, shop, _known(key), form, runtime.clock.now(), runtime)
    except TemplateRefused as exc:
        session.rollback()
        session.refresh(shop)
        typed = {field: form.get(field, "") for field in ("subject_template", "body_template")}  # shown again to fix
        return _settings(shop, session, runtime, lang, scenario_error={"key": key, "message": exc.explain(lang), **typed},
                         status=422)
    except SettingError as exc:
        session.rollback()
        raise AppError(422, "setting_refused", reason=in_language(str(exc))) from None
    session.commit()
    if request.headers.get("referer", "").split("?")[0].split("#")[0].endswith(f"/app/scenarios/{key}"):
        return RedirectResponse(f"/app/scenarios/{key}?saved=1#settings", status_code=303)  # back where it came from
    return RedirectResponse(f"/app/settings#{key}", status_code=303)




@router.get("/reports")
def reports(shop: CurrentShop, session: SessionDep, runtime: RuntimeDep, weeks: int = 8) -> JSONResponse:
    if not 1 <= weeks <= 104:
        raise AppError(422, "weeks_range")
    return JSONResponse(scenario_report(session, shop, runtime.clock.now(), weeks))

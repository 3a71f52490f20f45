"""The merchant's pages: settings with the one switch."""
from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import select

from plugin.deps import CurrentShop, Lang, RuntimeDep, SessionDep
from plugin.models import SyncState
from plugin.pages import render_page
from plugin.scenario_switch import scenario_overview, set_standard_scenarios
from plugin.sync_service import RESOURCES

router = APIRouter(prefix="/app")


def _csrf(runtime: RuntimeDep, shop_id: int) -> str:
    return runtime.signer.dumps({"shop": shop_id}, "csrf")


@router.get("/settings", response_class=HTMLResponse)
def settings_page(shop: CurrentShop, session: SessionDep, runtime: RuntimeDep, lang: Lang) -> HTMLResponse:
    scenarios = scenario_overview(session, shop, lang)
    states = {s.resource: s for s in session.execute(
        select(SyncState).where(SyncState.shop_id == shop.id)).scalars()}
    sync = [{"resource": r, "count": states[r].last_count if r in states else 0,
             "last_run_at": states[r].last_run_at if r in states else None} for r in RESOURCES]
    return render_page("settings.html", lang, shop=shop, scenarios=scenarios, sync=sync,
                       standard_on=any(s["enabled"] for s in scenarios), csrf=_csrf(runtime, shop.id or 0))


@router.post("/settings/standard-scenarios")
def switch_standard(shop: CurrentShop, session: SessionDep, runtime: RuntimeDep,
                    enabled: Annotated[str, Form()], csrf: Annotated[str, Form()]) -> RedirectResponse:
    if not secrets.compare_digest(csrf, _csrf(runtime, shop.id or 0)):
        raise HTTPException(403, "form expired; reload the settings page")
    if enabled not in ("0", "1"):
        raise HTTPException(422, "enabled must be 0 or 1")
    set_standard_scenarios(session, shop, enabled == "1", runtime.clock.now())
    session.commit()
    if enabled == "1":
        runtime.actors.scenario_tick.send(shop.id)  # the merchant sees results without waiting a round
    return RedirectResponse("/app/settings", status_code=303)

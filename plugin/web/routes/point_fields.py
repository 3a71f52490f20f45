"""The settings page's point fields: which customer fields hold the balance and expiry (platforms without native points)."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form
from fastapi.responses import RedirectResponse

from connectors.signatures import same_secret
from plugin.console.forms import SettingError
from plugin.console.point_fields import save_point_fields
from plugin.web.deps import CurrentShop, RuntimeDep, SessionDep
from plugin.web.errors import AppError, in_language

router = APIRouter(prefix="/app")


@router.post("/settings/point-fields")
def set_point_fields(shop: CurrentShop, session: SessionDep, runtime: RuntimeDep, csrf: Annotated[str, Form()],
                     balance_field: Annotated[str, Form(max_length=320)] = "",
                     expiry_field: Annotated[str, Form(max_length=320)] = "") -> RedirectResponse:
    """Save the fields; the next sync reads points from them (a full sync reads every customer's)."""
    if not same_secret(runtime.signer.dumps({"shop": shop.id}, "csrf"), csrf):
        raise AppError(403, "form_expired")
    if not runtime.platforms.get(shop.platform).points_field_required:
        raise AppError(404, "no_hook", platform=shop.platform, hook="point-fields")
    try:
        save_point_fields(session, shop, balance_field, expiry_field, runtime.clock.now())
    except SettingError as exc:
        session.rollback()
        raise AppError(422, "setting_refused", reason=in_language(str(exc))) from None
    runtime.tasks.sync_shop(shop.id or 0, full=True)  # every customer's balance, from the new field
    return RedirectResponse("/app/settings#points", status_code=303)

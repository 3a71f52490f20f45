"""Customers' data requests, answered: the merchant's list and the JSON downloads (plugin.sync.hook_apply writes them)."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from sqlmodel import col

from plugin.storage.db import MAX_ROW_ID
from plugin.storage.models import DataExport
from plugin.web.deps import Lang, RuntimeDep, SessionDep, SignedInShop
from plugin.web.errors import AppError
from plugin.web.point_field_texts import point_field_texts
from plugin.web.templating import render_page

router = APIRouter(prefix="/app")


@router.get("/data-requests", response_class=HTMLResponse)
def data_requests(shop: SignedInShop, session: SessionDep, lang: Lang) -> HTMLResponse:
    """Every export of this shop, newest first (an uninstalled shop's merchant still sees them)."""
    exports = session.execute(select(DataExport).where(col(DataExport.shop_id) == shop.id)
                              .order_by(col(DataExport.created_at).desc(), col(DataExport.id).desc()).limit(500)).scalars().all()
    return render_page("data_requests.html", lang, shop=shop, exports=exports, pf=point_field_texts(lang),
                       nav_active="settings")


@router.get("/data-requests/{export_id}.json")
def download_export(export_id: Annotated[int, Path(ge=1, le=MAX_ROW_ID)], shop: SignedInShop, session: SessionDep,
                    runtime: RuntimeDep) -> Response:
    export = session.get(DataExport, export_id)
    if export is None or export.shop_id != shop.id:  # another shop's export is as unknown as a missing one
        raise AppError(404, "no_export")
    export.downloaded_at = export.downloaded_at or runtime.clock.now()
    session.add(export)
    session.commit()
    name = f"data-request-{export.request_ref or export.id}.json"
    return Response(export.body, media_type="application/json",
                    headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})

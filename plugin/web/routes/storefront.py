"""Storefront tracking: the script and the endpoint its beacons post to (CORS, any origin)."""
from __future__ import annotations

import json

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlalchemy import select

from plugin.install.lifecycle import storefront_script
from plugin.storage.models import InstallState, Shop
from plugin.sync.storefront_events import StorefrontEvent, UnknownReference, record_event
from plugin.web.deps import RuntimeDep, SessionDep

router = APIRouter()
CORS = {"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Methods": "POST, OPTIONS",
        "Access-Control-Allow-Headers": "Content-Type", "Access-Control-Max-Age": "86400"}
MAX_BODY = 64 * 1024


@router.get("/storefront/colorme.js")
def colorme_script() -> Response:
    return Response(storefront_script(), media_type="application/javascript",
                    headers={**CORS, "Cache-Control": "public, max-age=300"})


@router.options("/events/colorme/{event_key}")
def preflight(event_key: str) -> Response:
    return Response(status_code=204, headers=CORS)


@router.post("/events/colorme/{event_key}")
async def colorme_event(event_key: str, request: Request, runtime: RuntimeDep, session: SessionDep) -> JSONResponse:
    """Beacons are sent as text/plain to avoid preflight, so the body is parsed by hand."""
    body = await request.body()
    if len(body) > MAX_BODY:
        raise HTTPException(413, "event body larger than 64 KiB")
    try:
        event = StorefrontEvent.model_validate(json.loads(body))
    except (ValueError, ValidationError) as exc:
        reason = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else "body is not JSON"
        return JSONResponse({"error": f"invalid event: {reason}"}, 422, headers=CORS)
    shop = session.execute(
        select(Shop).where(Shop.event_key == event_key, Shop.platform == "colorme")).scalar_one_or_none()
    if shop is None or shop.state != InstallState.active or not event_key:
        return JSONResponse({"error": "unknown shop key"}, 404, headers=CORS)
    try:
        outcome = record_event(session, shop, event, runtime.clock.now())
    except UnknownReference as exc:
        return JSONResponse({"error": str(exc)}, 422, headers=CORS)
    session.commit()
    return JSONResponse({"ok": True, "result": outcome}, 202, headers=CORS)

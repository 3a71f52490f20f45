"""Storefront tracking: each platform's script and the endpoint its beacons post to (CORS, any origin)."""
from __future__ import annotations

import logging

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import select
from sqlmodel import col

from connectors.storefront import InvalidEvent
from plugin import metrics
from plugin.measurement.links import read_visitor_proof
from plugin.measurement.thanks_page import record_thanks_page
from plugin.storage.models import InstallState, Shop
from plugin.sync.storefront_events import record_event
from plugin.web.deps import PlatformDep, RuntimeDep, SessionDep
from plugin.web.errors import AppError
from plugin.web.ratelimit import StorefrontEventLimit

router = APIRouter()
CORS = {"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Methods": "POST, OPTIONS",
        "Access-Control-Allow-Headers": "Content-Type", "Access-Control-Max-Age": "86400"}
MAX_BODY = 64 * 1024
ACCEPTED = {"ok": True}  # the one answer to every well-formed event
log = logging.getLogger("okaeri.storefront")


@router.get("/storefront/{platform}.js")
def storefront_script(platform: PlatformDep) -> Response:
    script = platform.script_body()
    if script is None:
        raise AppError(404, "no_script", platform=platform.name)
    return Response(script, media_type="application/javascript",
                    headers={**CORS, "Cache-Control": "public, max-age=300"})


@router.options("/events/{platform}/{event_key}")
def preflight(event_key: str, platform: PlatformDep) -> Response:
    return Response(status_code=204, headers=CORS)


@router.post("/events/{platform}/{event_key}", dependencies=[Depends(StorefrontEventLimit(headers=CORS))])
async def storefront_event(event_key: str, platform: PlatformDep, request: Request, runtime: RuntimeDep,
                           session: SessionDep) -> JSONResponse:
    """Beacons are sent as text/plain to avoid preflight, so the platform parses the raw body.

    Every well-formed event gets the same answer, whatever it names and whatever it changed: the
    answer never says which customers or products exist.
    """
    body = await request.body()
    if len(body) > MAX_BODY:
        metrics.intake("event", platform.name, "refused", "too_large")
        raise AppError(413, "too_large", kib=str(MAX_BODY // 1024), headers=CORS)
    try:
        event = platform.parse_event(body)
    except InvalidEvent as exc:
        metrics.intake("event", platform.name, "refused", "invalid")
        return JSONResponse({"error": f"invalid event: {exc}"}, 422, headers=CORS)
    shop = session.execute(
        select(Shop).where(col(Shop.event_key) == event_key, col(Shop.platform) == platform.name)).scalar_one_or_none()
    if shop is None or shop.state != InstallState.active or not shop.storefront_enabled or not event_key:
        metrics.intake("event", platform.name, "refused", "unknown_shop")
        return JSONResponse({"error": "unknown shop key"}, 404, headers=CORS)
    now = runtime.clock.now()
    proven = read_visitor_proof(runtime, event.proof, shop.id or 0, now) if event.proof else None
    if event.kind == "purchase":  # the thanks page: matched to the synced order, counted at most once
        outcome = record_thanks_page(session, shop, event.order_id, event.visitor_id, proven, now)
    else:
        outcome = record_event(session, shop, event, now, cart_url=platform.cart_url(shop.domain), proven_customer_id=proven)
    session.commit()
    log.info("okaeri.storefront.event", extra={"shop_id": shop.id, "kind": event.kind, "outcome": outcome})
    metrics.intake("event", platform.name, "accepted")
    return JSONResponse(ACCEPTED, 202, headers=CORS)

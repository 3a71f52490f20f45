"""Storefront tracking: each platform's script and the endpoint its beacons post to (CORS, any origin)."""
from __future__ import annotations

import logging

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from connectors.storefront import InvalidEvent
from plugin import metrics
from plugin.web.deps import PlatformDep
from plugin.web.errors import AppError
from plugin.web.event_intake import UNKNOWN_SHOP, EventIntake, Received
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
async def storefront_event(event_key: str, platform: PlatformDep, request: Request) -> JSONResponse:
    """Beacons are sent as text/plain to avoid preflight, so the platform parses the raw body.

    Every well-formed event gets the same answer, whatever it names and whatever it changed: the
    answer never says which customers or products exist. It comes once the event is committed
    (with whatever else arrived meanwhile: plugin.web.event_intake).
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
    intake: EventIntake = request.app.state.event_intake
    outcome = await intake.submit(Received(platform.name, event_key[:64], event))
    if outcome == UNKNOWN_SHOP:
        metrics.intake("event", platform.name, "refused", "unknown_shop")
        return JSONResponse({"error": "unknown shop key"}, 404, headers=CORS)
    log.debug("okaeri.storefront.event", extra={"kind": event.kind, "outcome": outcome})
    metrics.intake("event", platform.name, "accepted")
    return JSONResponse(ACCEPTED, 202, headers=CORS)

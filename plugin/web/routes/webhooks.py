"""A platform's one webhook endpoint: every topic at `POST /{platform}/webhooks`, answered at once.

The descriptor verifies the signature on the raw bytes before anything is parsed (a bad one is a
401, compliance topics included) and reads the headers; the topic's handler says what arrived:
the install lifecycle's (an uninstall, applied at once) or a delivery to store once per delivery
key and apply in a worker (plugin.sync.hook_intake). A topic nobody handles is acknowledged.
"""
from __future__ import annotations

import logging

from fastapi import APIRouter, Request

from connectors.platform import HookReceived, Uninstalled
from plugin.install.lifecycle import uninstall
from plugin.sync.hook_intake import store_delivery
from plugin.web.deps import PlatformDep, RuntimeDep
from plugin.web.errors import AppError

router = APIRouter()
log = logging.getLogger("okaeri.hooks")


@router.post("/{platform}/webhooks")
async def platform_webhook(platform: PlatformDep, request: Request, runtime: RuntimeDep) -> dict[str, object]:
    body = await request.body()
    if len(body) > platform.webhook_body_limit:
        raise AppError(413, "too_large", kib=str(platform.webhook_body_limit // 1024))
    delivery = platform.verify_delivery(body, request.headers)  # BadSignature → 401, BadResponse → 400
    handler = platform.webhook_topics.get(delivery.topic)
    if handler is None:
        log.info("okaeri.hooks.unhandled-topic", extra={"platform": platform.name, "topic": delivery.topic[:64]})
        return {"ok": True, "handled": False}
    event = handler(delivery, body)
    if isinstance(event, HookReceived):
        return {"ok": True, "queued": store_delivery(runtime, platform, event) is not None}
    if isinstance(event, Uninstalled):
        return {"ok": True, "changed": uninstall(runtime, platform, event)}
    raise AppError(404, "no_hook", platform=platform.name, hook=delivery.topic[:100])

"""A platform's one webhook endpoint: every topic at `POST /{platform}/webhooks`, answered at once.

The descriptor verifies the signature on the raw bytes before anything is parsed (a bad one is a
401, compliance topics included); what it returns is either the install lifecycle's (an uninstall)
or a delivery to store once and apply in a worker (plugin.sync.hook_intake).
"""
from __future__ import annotations

from fastapi import APIRouter, Request

from connectors.platform import HookReceived, InstallRequested, Uninstalled
from plugin.install.lifecycle import begin_install, uninstall
from plugin.sync.hook_intake import store_delivery
from plugin.web.deps import PlatformDep, RuntimeDep
from plugin.web.errors import AppError

router = APIRouter()


@router.post("/{platform}/webhooks")
async def platform_webhook(platform: PlatformDep, request: Request, runtime: RuntimeDep) -> dict[str, object]:
    body = await request.body()
    if len(body) > platform.webhook_body_limit:
        raise AppError(413, "too_large", kib=str(platform.webhook_body_limit // 1024))
    event = platform.receive_webhook(body, request.headers)  # BadSignature → 401, BadResponse → 400
    if event is None:
        raise AppError(404, "no_hook", platform=platform.name, hook="webhooks")
    if isinstance(event, HookReceived):
        return {"ok": True, "queued": store_delivery(runtime, platform, event) is not None}
    if isinstance(event, Uninstalled):
        return {"ok": True, "changed": uninstall(runtime, platform, event)}
    if isinstance(event, InstallRequested):
        begin_install(runtime, platform, event)
    return {"ok": True}

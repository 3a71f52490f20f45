"""A relay's webhook for bounces and complaints: the report mail itself, posted as the body.

For a setup that cannot receive SMTP on the bounce domain: a relay or forwarder that takes the
bounce domain's mail POSTs each message here, raw (RFC 822), with the shared token. The optional
X-Envelope-To header names the address it came to (the VERP return path); without it the
references quoted inside the report are used. The same Inbox as `okaeri bounces` handles it.
"""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Request
from starlette.concurrency import run_in_threadpool

from connectors.signatures import same_secret
from plugin.channels.bounces.inbound import Inbox
from plugin.channels.bounces.receiver import MAX_REPORT_BYTES
from plugin.channels.verp import ReturnPath
from plugin.web.deps import RuntimeDep
from plugin.web.errors import AppError

router = APIRouter()


@router.post("/mail/reports")
async def mail_report(request: Request, runtime: RuntimeDep, authorization: Annotated[str, Header()] = "",
                      x_envelope_to: Annotated[str, Header(max_length=320)] = "") -> dict[str, str]:
    """Handle one report mail; what came of it (suppressed, recorded, duplicate, unmatched, not-a-report)."""
    settings = runtime.settings
    if not (settings.bounce_webhook_token and settings.bounce_domain):
        raise HTTPException(404)  # not configured: as if there were no such endpoint
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not same_secret(settings.bounce_webhook_token, token.strip()):
        raise AppError(401, "invalid_signature", headers={"WWW-Authenticate": "Bearer"})
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_REPORT_BYTES:  # refused before it is read
        raise AppError(413, "too_large", kib=str(MAX_REPORT_BYTES // 1024))
    raw = await request.body()
    if len(raw) > MAX_REPORT_BYTES:
        raise AppError(413, "too_large", kib=str(MAX_REPORT_BYTES // 1024))
    inbox = Inbox(runtime.sessions, ReturnPath(runtime.signer, settings.bounce_domain), runtime.clock)
    outcome = await run_in_threadpool(inbox.receive, raw, [x_envelope_to] if x_envelope_to else [])
    return {"outcome": outcome}

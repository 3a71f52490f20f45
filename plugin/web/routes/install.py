"""ColorMe App-store hooks and OAuth: install → authorise → active; uninstall."""
from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Request
from fastapi.responses import RedirectResponse

from connectors.colorme import oauth, webhooks
from connectors.errors import ConnectorError
from plugin.crypto import BadSignature
from plugin.install.lifecycle import (
    begin_colorme_install,
    complete_colorme_install,
    uninstall_colorme,
)
from plugin.web.deps import SESSION_COOKIE, RuntimeDep, session_cookie

router = APIRouter(prefix="/colorme")
STATE_COOKIE = "okaeri_oauth"


@router.post("/hooks/install")
async def install_hook(
    request: Request, runtime: RuntimeDep,
    signature: Annotated[str | None, Header(alias=webhooks.SIGNATURE_HEADER)] = None,
) -> dict[str, str]:
    """ColorMe waits for {"redirect_url"} or aborts the install."""
    hook = webhooks.parse_install(runtime.settings.colorme_webhook_secret, await request.body(), signature)
    begin_colorme_install(runtime, hook)
    return {"redirect_url": f"{runtime.settings.base_url}/colorme/oauth/start?account_id={hook.account_id}"}


@router.post("/hooks/uninstall")
async def uninstall_hook(
    request: Request, runtime: RuntimeDep,
    signature: Annotated[str | None, Header(alias=webhooks.SIGNATURE_HEADER)] = None,
) -> dict[str, bool]:
    hook = webhooks.parse_uninstall(runtime.settings.colorme_webhook_secret, await request.body(), signature)
    return {"ok": True, "changed": uninstall_colorme(runtime, hook)}


@router.get("/oauth/start")
def oauth_start(account_id: str, runtime: RuntimeDep) -> RedirectResponse:
    if not webhooks.ACCOUNT_ID.match(account_id):
        raise HTTPException(400, "account_id must be PA followed by 8 digits")
    state = secrets.token_urlsafe(24)
    settings = runtime.settings
    url = oauth.authorize_url(settings.colorme_api_base, settings.colorme_client_id,
                              f"{settings.base_url}/colorme/oauth/callback", state)
    response = RedirectResponse(url, status_code=303)
    response.set_cookie(STATE_COOKIE, runtime.signer.dumps_timed({"state": state, "account": account_id}, "oauth"),
                        max_age=600, httponly=True, samesite="lax")
    return response


@router.get("/oauth/callback")
def oauth_callback(request: Request, runtime: RuntimeDep, code: str = "", state: str = "",
                   error: str = "", error_description: str = "") -> RedirectResponse:
    try:
        bound = runtime.signer.loads_timed(request.cookies.get(STATE_COOKIE, ""), "oauth", 600)
    except BadSignature:
        raise HTTPException(400, "OAuth session expired or missing; start the install again") from None
    if not isinstance(bound, dict) or not secrets.compare_digest(str(bound.get("state")), state):
        raise HTTPException(400, "OAuth state does not match this browser session")
    if error or not code:
        raise HTTPException(400, f"authorisation refused: {error or 'no code'} {error_description}".strip())
    try:
        shop = complete_colorme_install(runtime, str(bound["account"]), code,
                                        f"{runtime.settings.base_url}/colorme/oauth/callback")
    except ConnectorError as exc:
        raise HTTPException(502 if exc.status is None or exc.status >= 500 else 400,
                            f"ColorMe install failed: {exc}") from exc
    response = RedirectResponse("/app/settings", status_code=303)
    response.delete_cookie(STATE_COOKIE)
    response.set_cookie(SESSION_COOKIE, session_cookie(runtime, shop.id or 0), httponly=True, samesite="lax",
                        max_age=7 * 86400)
    return response

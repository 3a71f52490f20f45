"""A platform's install hooks and OAuth: install → authorise → active; uninstall. Any registered platform."""
from __future__ import annotations

import hashlib
import secrets
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from connectors.errors import BadResponse, ConnectorError
from connectors.platform import AppLaunch, ForeignGrant, InstallRequested, LaunchRefused
from connectors.signatures import same_secret
from plugin import metrics
from plugin.crypto import BadSignature
from plugin.install.lifecycle import (
    begin_install,
    callback_url,
    claim_oauth_state,
    claim_once,
    complete_install,
    exchange_launch_token,
    find_shop,
    oauth_start_url,
    uninstall,
)
from plugin.storage.models import InstallState, Shop
from plugin.web.deps import SESSION_COOKIE, Lang, PlatformDep, RuntimeDep, session_cookie, signed_in_shop_id
from plugin.web.errors import AppError
from plugin.web.i18n import texts
from plugin.web.install_state import install_state_page
from plugin.web.templating import render_page

router = APIRouter(prefix="/{platform}")
STATE_COOKIE = "okaeri_oauth"
MAX_HOOK_BODY = 64 * 1024  # install and uninstall hooks carry a few fields


@router.post("/hooks/{hook}")
async def platform_hook(hook: str, platform: PlatformDep, request: Request, runtime: RuntimeDep) -> dict[str, object]:
    """Verify and handle one hook; an install hook answers where the merchant goes next."""
    handler = platform.hooks.get(hook)
    if handler is None:
        raise AppError(404, "no_hook", platform=platform.name, hook=hook[:100])
    body = await request.body()
    if len(body) > MAX_HOOK_BODY:  # checked before the signature: nothing this large is ever stored
        metrics.intake("webhook", platform.name, "refused", "too_large")
        raise AppError(413, "too_large", kib=str(MAX_HOOK_BODY // 1024))
    try:
        event = handler(body, request.headers)
    except BadSignature:
        metrics.intake("webhook", platform.name, "refused", "bad_signature")
        raise
    except BadResponse:
        metrics.intake("webhook", platform.name, "refused", "invalid")
        raise
    metrics.intake("webhook", platform.name, "accepted")
    if isinstance(event, InstallRequested):
        begin_install(runtime, platform, event)
        return {"redirect_url": oauth_start_url(runtime, platform, event.account)}
    return {"ok": True, "changed": uninstall(runtime, platform, event)}


@router.get("/open", response_model=None)
def open_app(request: Request, platform: PlatformDep, runtime: RuntimeDep, lang: Lang,
             account_id: str = "") -> RedirectResponse | Response:
    """The app's "open" link (the app store's open-app URL, the settings page): the dashboard for a
    signed-in active shop; OAuth for an install left before authorising or whose token was refused
    (a fresh, single-use state each time); an uninstalled shop is told to install from the store.
    Without `account_id`, OAuth itself says which shop it is (the token's own account)."""
    signed_in = signed_in_shop_id(request, runtime)
    if not account_id:
        with runtime.sessions() as session:
            mine = session.get(Shop, signed_in) if signed_in is not None else None
        if mine is not None and mine.platform == platform.name and mine.state == InstallState.active:
            return RedirectResponse("/app/", status_code=303)
        return _authorise(runtime, platform, "")
    try:
        platform.check_account(account_id)
    except BadResponse as exc:
        raise AppError(400, "bad_account", reason=str(exc)) from None
    with runtime.sessions() as session:
        shop = find_shop(session, platform.name, account_id)
    if shop is None:
        raise AppError(404, "not_installed")
    if shop.state == InstallState.active and signed_in == shop.id:
        return RedirectResponse("/app/", status_code=303)
    if shop.state == InstallState.uninstalled:
        return install_state_page(runtime, shop, lang, 409)
    return RedirectResponse(oauth_start_url(runtime, platform, account_id), status_code=303)


@router.get("/oauth/start")
def oauth_start(account_id: str, platform: PlatformDep, runtime: RuntimeDep) -> RedirectResponse:
    try:
        platform.check_account(account_id)
    except BadResponse as exc:
        raise AppError(400, "bad_account", reason=str(exc)) from None
    return _authorise(runtime, platform, account_id)


def _authorise(runtime: RuntimeDep, platform: PlatformDep, account: str) -> RedirectResponse:
    """Send the browser to the platform's consent page, the `state` bound to it by a signed cookie;
    `account` "" lets the token say which shop authorised."""
    state = secrets.token_urlsafe(24)
    url = platform.authorize_url(account, callback_url(runtime, platform), state)
    response = RedirectResponse(url, status_code=303)
    response.set_cookie(STATE_COOKIE, runtime.signer.dumps_timed(
        {"state": state, "account": account, "platform": platform.name}, "oauth"),
        max_age=600, httponly=True, samesite="lax")
    return response


@router.get("/oauth/callback")
def oauth_callback(request: Request, platform: PlatformDep, runtime: RuntimeDep, lang: Lang, code: str = "",
                   state: str = "", error: str = "", error_description: str = "") -> Response:
    try:  # a platform that signs its callbacks: the signature first, before any other look at the query
        proven = platform.verify_callback(request.url.query, runtime.clock.now())
    except LaunchRefused as exc:
        raise _launch_refused(platform.title, exc) from None
    try:
        bound = runtime.signer.loads_timed(request.cookies.get(STATE_COOKIE, ""), "oauth", 600)
    except BadSignature:
        raise AppError(400, "oauth_expired") from None
    if not isinstance(bound, dict) or bound.get("platform") != platform.name \
            or not same_secret(str(bound.get("state")), state):
        raise AppError(400, "oauth_state")
    if error or not code:
        raise AppError(400, "oauth_refused", error=(error or "no code")[:100], description=error_description[:300])
    account = str(bound["account"])
    if proven and account and proven != account:  # the callback names another shop than the one authorising
        return _foreign(platform.title, lang, proven, account)
    if not claim_oauth_state(runtime, platform, state) or \
            not claim_once(runtime, platform, "oauth-code", hashlib.sha256(code.encode()).hexdigest()):
        raise AppError(400, "oauth_used")
    account = account or proven
    try:
        shop = complete_install(runtime, platform, account, code)
    except ForeignGrant as exc:  # the merchant authorised from another shop's login: say which, in their language
        return _foreign(platform.title, lang, exc.granted, exc.expected)
    except LaunchRefused as exc:  # e.g. fewer scopes granted than asked for: nothing stored
        raise _launch_refused(platform.title, exc) from None
    except ConnectorError as exc:
        raise AppError(502 if exc.status is None or exc.status >= 500 else 400, "install_failed",
                       platform=platform.title, reason=str(exc)) from exc
    response = RedirectResponse("/app/", status_code=303)  # the dashboard is the page after login
    response.delete_cookie(STATE_COOKIE)
    _sign_in(response, runtime, shop.id or 0)
    return response


@router.get("/app", response_model=None)
def app_launch(request: Request, platform: PlatformDep, runtime: RuntimeDep) -> RedirectResponse:
    """The app URL of a platform-managed install (the platform opens it after installing, and from its
    admin): a signed query names the shop. Inside the admin frame its session token is exchanged for
    the shop's token (token exchange); outside it, OAuth's code grant runs. An installed shop opens
    its console."""
    if not platform.managed_install:
        raise AppError(404, "no_launch", platform=platform.title)
    try:
        launch = platform.verify_launch(request.url.query, runtime.clock.now())
        if launch.id_token and platform.session_account(launch.id_token, runtime.clock.now()) != launch.account:
            raise LaunchRefused("foreign_shop", "the session token names another shop", platform=platform.name)
    except LaunchRefused as exc:
        raise _launch_refused(platform.title, exc) from None
    with runtime.sessions() as session:
        shop = find_shop(session, platform.name, launch.account)
    # An install granted fewer scopes than the app now asks for goes through authorisation again.
    installed = shop is not None and shop.state == InstallState.active and bool(shop.access_token_encrypted) \
        and not platform.missing_scopes(shop.scopes)
    if launch.id_token:
        if not installed:
            try:
                exchange_launch_token(runtime, platform, launch.account, launch.id_token)
            except LaunchRefused as exc:
                raise _launch_refused(platform.title, exc) from None
            except ConnectorError as exc:
                raise AppError(502 if exc.status is None or exc.status >= 500 else 400, "install_failed",
                               platform=platform.title, reason=str(exc)) from exc
        return RedirectResponse(f"/app/?{_embedded_query(launch)}", status_code=303)
    if installed and shop is not None:  # a signed link signs one browser in, once (a copied link does not)
        signed = "&".join(sorted(request.url.query.split("&")))  # the same link in any parameter order
        if not claim_once(runtime, platform, "launch", hashlib.sha256(signed.encode()).hexdigest()):
            raise AppError(400, "launch_used", platform=platform.title)
        response = RedirectResponse("/app/", status_code=303)
        _sign_in(response, runtime, shop.id or 0)
        return response
    return _authorise(runtime, platform, launch.account)


def _embedded_query(launch: AppLaunch) -> str:
    """What the console inside the admin frame needs: the shop, App Bridge's host, the session token."""
    return urlencode({"shop": launch.account, "host": launch.host, "id_token": launch.id_token, "embedded": "1"})


def _sign_in(response: Response, runtime: RuntimeDep, shop_id: int) -> None:
    response.set_cookie(SESSION_COOKIE, session_cookie(runtime, shop_id), httponly=True, samesite="lax",
                        max_age=7 * 86400)


def _foreign(title: str, lang: str, granted: str, expected: str) -> Response:
    t = texts(lang)
    refused = render_page("message.html", lang, 400, title=t["install_failed"], message=t["foreign_account"].format(
        platform=title, granted=granted, expected=expected))
    refused.delete_cookie(STATE_COOKIE)
    return refused


# A refused launch or callback, by LaunchRefused.reason: the page says which check failed.
LAUNCH_REASONS = {"bad_signature": "launch_tampered", "unsigned": "launch_tampered", "malformed": "launch_tampered",
                  "stale": "launch_stale", "foreign_shop": "launch_foreign_shop", "scopes": "launch_scopes",
                  # the admin's session token that came with the launch
                  "expired": "session_token", "not_yet_valid": "session_token", "signature": "session_token",
                  "audience": "session_token", "missing": "session_token", "shop_mismatch": "session_token"}


def _launch_refused(title: str, exc: LaunchRefused) -> AppError:
    return AppError(exc.status or 400, LAUNCH_REASONS.get(exc.reason, "launch_tampered"), platform=title,
                    reason=str(exc)[:300])

"""Request dependencies as Annotated aliases, so handlers read as plain types."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import select
from sqlmodel import Session, col

from connectors.platform import LaunchRefused, Platform
from plugin.crypto import BadSignature
from plugin.platforms import UnknownPlatform
from plugin.runtime import Runtime
from plugin.storage.models import InstallState, Shop
from plugin.web.embedding import STATE_KEY, Embedded
from plugin.web.errors import AppError
from plugin.web.i18n import request_lang

__all__ = ["RuntimeDep", "SessionDep", "CurrentShop", "SignedInShop", "PlatformDep", "Lang", "SESSION_COOKIE",
           "session_cookie", "signed_in_shop_id", "session_token_of", "embedded_shop"]

SESSION_COOKIE = "okaeri_session"


# Dependencies that only read the app's state are `async def`: a plain `def` is run on the
# threadpool, a thread hop per dependency per request (most of a storefront beacon's cost).
async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def get_session(runtime: RuntimeDep) -> Iterator[Session]:
    with runtime.sessions() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def session_cookie(runtime: Runtime, shop_id: int) -> str:
    return runtime.signer.dumps_timed({"shop": shop_id}, "merchant-session")


def signed_in_shop_id(request: Request, runtime: Runtime) -> int | None:
    """The shop id this browser's merchant session names, or None without a valid session."""
    cookie = request.cookies.get(SESSION_COOKIE, "")
    try:
        signed = runtime.signer.loads_timed(cookie, "merchant-session", 7 * 86400)
        if not isinstance(signed, dict):
            raise TypeError("the session cookie holds no shop")
        return int(signed["shop"])
    except (BadSignature, KeyError, TypeError, ValueError):
        return None


def session_token_of(request: Request) -> str | None:
    """The embedded admin's session token: `Authorization: Bearer <JWT>` (App Bridge's fetch), or the
    `id_token` the platform adds to a page it loads in its admin frame; None outside the admin."""
    header = request.headers.get("authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    return request.query_params.get("id_token") or None


def embedded_shop(request: Request, runtime: Runtime, session: Session, token: str) -> Shop:
    """The shop a session token speaks for, as the platform that signed it says; a token never opens
    another shop, and a token no embedded platform accepts is a 401 (never the cookie's shop)."""
    now, reason = runtime.clock.now(), "none"
    for platform in runtime.platforms:
        if not platform.embedded_admin:
            continue
        try:
            account = platform.session_account(token, now)
        except LaunchRefused as exc:
            reason = exc.reason
            continue
        shop = session.execute(select(Shop).where(col(Shop.platform) == platform.name,
                                                  col(Shop.external_id) == account)).scalar_one_or_none()
        setattr(request.state, STATE_KEY, Embedded(token, platform.frame_ancestors(account), platform.embedded_head(account)))
        if shop is None:
            raise AppError(403, "not_installed")
        return shop
    raise AppError(401, "session_token", reason=reason[:40])


def get_signed_in_shop(request: Request, runtime: RuntimeDep, session: SessionDep) -> Shop:
    """The shop whose merchant holds this browser session (set at the end of OAuth), in any state;
    inside a platform's admin, the shop its session token names instead."""
    token = session_token_of(request)
    if token is not None:
        return embedded_shop(request, runtime, session, token)
    shop_id = signed_in_shop_id(request, runtime)
    if shop_id is None:
        raise AppError(401, "sign_in")
    shop = session.get(Shop, shop_id)
    if shop is None:
        raise AppError(403, "not_installed")
    return shop


def get_current_shop(shop: Annotated[Shop, Depends(get_signed_in_shop)]) -> Shop:
    """The signed-in merchant's shop, installed and active."""
    if shop.state != InstallState.active:
        raise AppError(403, "not_installed")
    return shop


SignedInShop = Annotated[Shop, Depends(get_signed_in_shop)]
CurrentShop = Annotated[Shop, Depends(get_current_shop)]


async def get_platform(platform: str, runtime: RuntimeDep) -> Platform[Any]:
    """The platform a `/{platform}/...` URL names, from the runtime's registry; 404 if none."""
    try:
        return runtime.platforms.get(platform)
    except UnknownPlatform:
        raise AppError(404, "unknown_platform", platform=platform[:100]) from None


PlatformDep = Annotated[Platform[Any], Depends(get_platform)]


async def get_lang(request: Request) -> str:
    """Japanese unless ?lang=en, the lang cookie or a browser that puts English first says English."""
    return request_lang(request)


Lang = Annotated[str, Depends(get_lang)]

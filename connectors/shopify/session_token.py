"""App Bridge session tokens: how the embedded admin proves which shop (and staff user) is asking.

Inside Shopify admin the console has no cookie; every request carries `Authorization: Bearer <JWT>`
signed HS256 with the app's client secret. A token is accepted only when its signature, `aud`
(our client id), `exp` and `nbf` hold and its `iss` and `dest` name the same `*.myshopify.com`
shop; the caller then opens that shop and no other. PyJWT does the JOSE part (algorithm pinned,
so `alg: none` or an RS256 confusion is refused).
"""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

import jwt

from connectors.shopify.shop_domain import InvalidShopDomain, parse_shop_domain

__all__ = ["SessionToken", "SessionTokenRefused", "verify_session_token", "LEEWAY_SECONDS"]

# Shopify's tokens live one minute; a few seconds absorb clock drift between us and Shopify.
LEEWAY_SECONDS = 5
_REQUIRED = ["exp", "nbf", "iss", "dest", "aud", "sub"]


class SessionTokenRefused(ValueError):
    """The bearer token is not a valid session token for this app; `reason` is a short key."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class SessionToken:
    shop: str  # the *.myshopify.com domain the token was issued for
    user_id: str  # the staff member (`sub`)
    session_id: str  # `sid`, "" when absent
    expires_at: int


def verify_session_token(token: str, *, client_id: str, client_secret: str, now: float) -> SessionToken:
    """Verify an App Bridge session token and return whom it speaks for, or raise SessionTokenRefused."""
    if not client_secret or not token or len(token) > 4096:
        raise SessionTokenRefused("missing")
    try:
        claims = jwt.decode(
            token,
            client_secret,
            algorithms=["HS256"],
            audience=client_id,
            leeway=LEEWAY_SECONDS,
            options={"require": _REQUIRED, "verify_iat": False, "verify_exp": False, "verify_nbf": False},
        )
    except jwt.InvalidAudienceError as exc:
        raise SessionTokenRefused("audience") from exc
    except jwt.InvalidSignatureError as exc:
        raise SessionTokenRefused("signature") from exc
    except jwt.PyJWTError as exc:
        raise SessionTokenRefused("malformed") from exc
    # Times are checked against the caller's clock (tests and the sandbox freeze it).
    exp, nbf = claims.get("exp"), claims.get("nbf")
    if not isinstance(exp, int | float) or not isinstance(nbf, int | float):
        raise SessionTokenRefused("malformed")
    if now > exp + LEEWAY_SECONDS:
        raise SessionTokenRefused("expired")
    if now < nbf - LEEWAY_SECONDS:
        raise SessionTokenRefused("not_yet_valid")
    dest, iss = _shop_of(claims.get("dest"), ""), _shop_of(claims.get("iss"), "/admin")
    if dest != iss:
        raise SessionTokenRefused("shop_mismatch")
    return SessionToken(shop=dest, user_id=str(claims.get("sub", "")), session_id=str(claims.get("sid") or ""),
                        expires_at=int(exp))


def _shop_of(url: object, path: str) -> str:
    """The shop domain of `https://<shop>` (dest) or `https://<shop>/admin` (iss)."""
    if not isinstance(url, str):
        raise SessionTokenRefused("malformed")
    parts = urlsplit(url)
    if parts.scheme != "https" or parts.path.rstrip("/") != path or parts.query or parts.fragment:
        raise SessionTokenRefused("shop_mismatch")
    try:
        return parse_shop_domain(parts.netloc)
    except InvalidShopDomain as exc:
        raise SessionTokenRefused("shop_mismatch") from exc

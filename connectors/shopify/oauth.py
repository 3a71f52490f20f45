"""Getting and keeping a shop's Admin API token: code grant, token exchange, refresh.

All three post to `https://{shop}/admin/oauth/access_token` and answer the same shape; Okaeri
asks for **expiring offline tokens** (one hour, with a refresh token that Shopify replaces on
each use — required for public apps from 2027-01-01, PLATFORMS.md 2.2). Callers store the whole
`ShopifyGrant` atomically; the refresh token of a grant must never be used twice (the caller
serialises refreshes per shop).

A code is exchanged once and never retried (a second try would burn or reuse it). A token
exchange and a refresh are retried on timeouts and 5xx with backoff: an App Bridge id token stays
valid for its minute, and Shopify keeps the previous refresh token until the new one is used.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx

from connectors.errors import BadResponse, ProviderDown, Unauthorized
from connectors.shopify.shop_domain import admin_url, parse_shop_domain

__all__ = ["ShopifyGrant", "shop_url", "authorize_url", "exchange_code", "exchange_session_token", "refresh",
           "missing_scopes", "needs_refresh", "REFRESH_MARGIN"]

PLATFORM = "shopify"
RETRY_DELAYS = (0.5, 1.0, 2.0)
# Refresh this long before expiry, so a job that starts now never meets a dead token mid-way.
REFRESH_MARGIN = timedelta(minutes=5)
_TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
_ID_TOKEN = "urn:ietf:params:oauth:token-type:id_token"
_OFFLINE = "urn:shopify:params:oauth:token-type:offline-access-token"


@dataclass(frozen=True)
class ShopifyGrant:
    access_token: str
    scopes: frozenset[str]
    expires_at: datetime | None  # None: a legacy non-expiring token
    refresh_token: str = ""
    refresh_expires_at: datetime | None = None


def shop_url(shop: str, path: str, api_base: str = "") -> str:
    """`https://{shop}{path}`, or `{api_base}/{shop}{path}` on a sandbox serving every shop under one host."""
    return f"{api_base.rstrip('/')}/{parse_shop_domain(shop)}{path}" if api_base else admin_url(shop, path)


def authorize_url(shop: str, *, client_id: str, scopes: Iterable[str], redirect_uri: str, state: str,
                  api_base: str = "") -> str:
    """Where to send a merchant for the code grant (offline access: no `grant_options[]`)."""
    query = urlencode({"client_id": client_id, "scope": ",".join(sorted(scopes)),
                       "redirect_uri": redirect_uri, "state": state})
    return shop_url(shop, f"/admin/oauth/authorize?{query}", api_base)


def missing_scopes(requested: Iterable[str], granted: Iterable[str]) -> set[str]:
    """Requested scopes the grant lacks; `write_x` covers `read_x`, as Shopify grants them."""
    have = set(granted)
    have |= {f"read_{s[len('write_'):]}" for s in have if s.startswith("write_")}
    return {s for s in requested if s not in have}


def needs_refresh(grant: ShopifyGrant, now: datetime) -> bool:
    """Whether to refresh before using the token (always false for a non-expiring token)."""
    return grant.expires_at is not None and now >= grant.expires_at - REFRESH_MARGIN


def exchange_code(http: httpx.Client, shop: str, *, client_id: str, client_secret: str, code: str,
                  now: datetime, api_base: str = "") -> ShopifyGrant:
    """Trade the callback's code for a token, once (no retry)."""
    body = {"client_id": client_id, "client_secret": client_secret, "code": code, "expiring": "1"}
    return _grant(_post_once(http, shop, body, api_base), now)


def exchange_session_token(http: httpx.Client, shop: str, *, client_id: str, client_secret: str,
                           id_token: str, now: datetime, sleep: Callable[[float], None] = time.sleep,
                           api_base: str = "") -> ShopifyGrant:
    """Token exchange for the embedded app: the App Bridge id token becomes an expiring offline token."""
    body = {"client_id": client_id, "client_secret": client_secret, "grant_type": _TOKEN_EXCHANGE,
            "subject_token": id_token, "subject_token_type": _ID_TOKEN, "requested_token_type": _OFFLINE,
            "expiring": "1"}
    return _grant(_post_retrying(http, shop, body, sleep, api_base), now)


def refresh(http: httpx.Client, shop: str, *, client_id: str, client_secret: str, grant: ShopifyGrant,
            now: datetime, sleep: Callable[[float], None] = time.sleep, api_base: str = "") -> ShopifyGrant:
    """A new access token and its replacement refresh token; Unauthorized when the refresh token is dead."""
    if not grant.refresh_token:
        raise Unauthorized("no refresh token: the shop must authorise again", platform=PLATFORM, status=401)
    body = {"client_id": client_id, "client_secret": client_secret, "grant_type": "refresh_token",
            "refresh_token": grant.refresh_token}
    fresh = _grant(_post_retrying(http, shop, body, sleep, api_base), now)
    # A refresh answer without scopes keeps the ones the shop granted.
    return fresh if fresh.scopes else ShopifyGrant(fresh.access_token, grant.scopes, fresh.expires_at,
                                                    fresh.refresh_token, fresh.refresh_expires_at)


def _post_once(http: httpx.Client, shop: str, body: dict[str, str], api_base: str = "") -> dict[str, Any]:
    try:
        response = http.post(shop_url(shop, "/admin/oauth/access_token", api_base), data=body,
                             headers={"Accept": "application/json"})
    except httpx.TransportError as exc:
        raise ProviderDown(f"Shopify unreachable: {exc}", platform=PLATFORM) from exc
    return _decode(response)


def _post_retrying(http: httpx.Client, shop: str, body: dict[str, str],
                   sleep: Callable[[float], None], api_base: str = "") -> dict[str, Any]:
    for delay in (*RETRY_DELAYS, None):
        try:
            return _post_once(http, shop, body, api_base)
        except ProviderDown:
            if delay is None:
                raise
            sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


def _decode(response: httpx.Response) -> dict[str, Any]:
    status = response.status_code
    if status >= 500 or status == 429:
        raise ProviderDown(f"Shopify token endpoint answered {status}", platform=PLATFORM, status=status)
    try:
        body = response.json()
    except ValueError:
        body = {}
    if status in (400, 401, 403) and isinstance(body, dict) and body.get("error") in (
            "invalid_grant", "invalid_client", "invalid_subject_token", "unauthorized_client"):
        raise Unauthorized(f"Shopify refused the grant: {body.get('error')}", platform=PLATFORM, status=status)
    if status >= 400 or not isinstance(body, dict):
        raise BadResponse(f"Shopify token endpoint answered {status}", platform=PLATFORM, status=status)
    return body


def _grant(body: dict[str, Any], now: datetime) -> ShopifyGrant:
    token = body.get("access_token")
    if not isinstance(token, str) or not token:
        raise BadResponse("Shopify's token answer has no access_token", platform=PLATFORM)
    scopes = frozenset(s.strip() for s in str(body.get("scope") or "").split(",") if s.strip())
    return ShopifyGrant(access_token=token, scopes=scopes, expires_at=_after(now, body.get("expires_in")),
                        refresh_token=str(body.get("refresh_token") or ""),
                        refresh_expires_at=_after(now, body.get("refresh_token_expires_in")))


def _after(now: datetime, seconds: Any) -> datetime | None:
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not 0 < seconds < 10**9:
        return None
    return now + timedelta(seconds=float(seconds))

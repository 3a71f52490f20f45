"""The sandbox Shopify shop's side of install: the signed app URL, OAuth and the token endpoint.

Adds to the sandbox Admin API (shopify_admin.py), under `/{shop}/`:
- `GET /{shop}/admin/apps/okaeri` plays the admin opening the app: it redirects to the app URL with
  the query Shopify signs (`shop`, `host`, `timestamp`, `hmac`; `embedded=1&id_token=…` with
  `?embedded=1`, the id token an App Bridge session token signed with the client secret);
- `GET /{shop}/admin/oauth/authorize` approves at once and returns to `redirect_uri` with a signed
  `code`, `state`, `shop`, `host`, `timestamp`;
- `POST /{shop}/admin/oauth/access_token` answers the three grants Okaeri uses: a code (once),
  token exchange (the id token verified like Shopify does) and a refresh (each refresh token once;
  using one again is `invalid_grant`, and `refresh_uses` counts every use for tests).
Every access token it issues expires after `token_ttl` seconds, as Shopify's expiring offline tokens do.
"""
from __future__ import annotations

import base64
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlencode

import jwt
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse

from connectors.shopify.query_hmac import sign_query
from connectors.shopify.session_token import SessionTokenRefused, verify_session_token
from plugin.demo.sandbox.shopify_admin import ShopifySandboxShop

__all__ = ["SandboxOAuth", "add_oauth_routes", "session_token", "signed_launch_query"]


def session_token(shop: str, client_id: str, client_secret: str, *, now: float | None = None,
                  lifetime: int = 60, user: str = "42") -> str:
    """An App Bridge session token for `shop` (what the admin hands the embedded app)."""
    issued = int(now if now is not None else time.time())
    claims = {"iss": f"https://{shop}/admin", "dest": f"https://{shop}", "aud": client_id, "sub": user,
              "exp": issued + lifetime, "nbf": issued - 1, "iat": issued, "jti": secrets.token_hex(8),
              "sid": secrets.token_hex(8)}
    return jwt.encode(claims, client_secret, algorithm="HS256")


def signed_launch_query(params: dict[str, str], client_secret: str) -> str:
    """`params` plus `hmac`, signed as Shopify signs the app URL and the OAuth callback."""
    pairs = sorted(params.items())
    return urlencode([*pairs, ("hmac", sign_query(pairs, client_secret))])


@dataclass
class SandboxOAuth:
    """The sandbox's app credentials and the grants it handed out."""

    client_id: str
    client_secret: str
    app_url: str  # Okaeri's app URL, e.g. http://127.0.0.1:8000/shopify/app
    scopes: str = ""  # what the authorize page grants; "" grants what was asked
    token_ttl: float = 3600.0
    clock: Callable[[], float] = time.time  # Unix time the shop signs with (Okaeri's clock in tests and the demo)
    codes: dict[str, str] = field(default_factory=dict)  # code → shop, until used
    refresh_tokens: dict[str, str] = field(default_factory=dict)  # live refresh token → shop
    refresh_uses: Counter[str] = field(default_factory=Counter)  # every refresh token presented, valid or not
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def grant(self, shop: ShopifySandboxShop, scope: str) -> dict[str, object]:
        token, refresh = f"shpat_{secrets.token_hex(12)}", f"shprt_{secrets.token_hex(12)}"
        shop.issued[token] = time.monotonic() + self.token_ttl
        self.refresh_tokens[refresh] = shop.domain
        return {"access_token": token, "scope": scope, "expires_in": int(self.token_ttl), "refresh_token": refresh,
                "refresh_token_expires_in": 90 * 86400}


def add_oauth_routes(app: FastAPI, shops: dict[str, ShopifySandboxShop], oauth: SandboxOAuth) -> None:
    """Serve the admin's app link, the authorize page and the token endpoint for `shops`."""

    def host_of(domain: str) -> str:
        return base64.urlsafe_b64encode(f"admin.shopify.com/store/{domain.split('.')[0]}".encode()).decode().rstrip("=")

    @app.get("/{domain}/admin/apps/okaeri")
    def open_app(domain: str, embedded: int = 0) -> RedirectResponse:
        params = {"shop": domain, "host": host_of(domain), "timestamp": str(int(oauth.clock()))}
        if embedded:
            params |= {"embedded": "1", "id_token": session_token(domain, oauth.client_id, oauth.client_secret,
                                                                  now=oauth.clock())}
        return RedirectResponse(f"{oauth.app_url}?{signed_launch_query(params, oauth.client_secret)}", status_code=302)

    @app.get("/{domain}/admin/oauth/authorize", response_model=None)
    def authorize(domain: str, client_id: str, redirect_uri: str, state: str, scope: str = "") -> RedirectResponse | JSONResponse:
        if domain not in shops or client_id != oauth.client_id:
            return JSONResponse({"error": "invalid_request"}, status_code=400)
        code = secrets.token_hex(16)
        with oauth._lock:
            oauth.codes[code] = domain
        params = {"code": code, "host": host_of(domain), "shop": domain, "state": state,
                  "timestamp": str(int(oauth.clock()))}
        return RedirectResponse(f"{redirect_uri}?{signed_launch_query(params, oauth.client_secret)}", status_code=302)

    @app.post("/{domain}/admin/oauth/access_token")
    async def access_token(domain: str, request: Request) -> JSONResponse:
        form = {key: str(value) for key, value in (await request.form()).items()}
        shop = shops.get(domain)
        if shop is None or form.get("client_id") != oauth.client_id or form.get("client_secret") != oauth.client_secret:
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        scope = oauth.scopes or "read_customer_events,read_customers,read_inventory,read_orders,read_products,write_pixels"
        grant_type = form.get("grant_type", "")
        with oauth._lock:
            if grant_type == "refresh_token":
                presented = form.get("refresh_token", "")
                oauth.refresh_uses[presented] += 1
                if oauth.refresh_tokens.pop(presented, None) != domain:
                    return JSONResponse({"error": "invalid_grant"}, status_code=400)
                return JSONResponse(oauth.grant(shop, scope))
            if grant_type == "urn:ietf:params:oauth:grant-type:token-exchange":
                try:
                    verified = verify_session_token(form.get("subject_token", ""), client_id=oauth.client_id,
                                                    client_secret=oauth.client_secret, now=oauth.clock())
                except SessionTokenRefused:
                    return JSONResponse({"error": "invalid_subject_token"}, status_code=400)
                if verified.shop != domain:
                    return JSONResponse({"error": "invalid_subject_token"}, status_code=400)
                return JSONResponse(oauth.grant(shop, scope))
            if oauth.codes.pop(form.get("code", ""), None) != domain:
                return JSONResponse({"error": "invalid_grant"}, status_code=400)
            return JSONResponse(oauth.grant(shop, scope))

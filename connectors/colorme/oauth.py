"""ColorMe OAuth 2.0 authorization-code flow (tokens never expire; no refresh)."""
from __future__ import annotations

from urllib.parse import urlencode

import httpx

from connectors.errors import BadResponse, ProviderDown, Unauthorized
from connectors.platform import Grant

__all__ = ["SCOPES", "authorize_url", "exchange_code", "revoke_token"]

# read_sales covers orders AND customers; there is no separate customer scope. The script-tag
# scopes: read to find the tag a shop already has when it authorises again, write to place it.
SCOPES = ("read_products", "read_sales", "read_shop_script_tags", "write_shop_script_tags")


def authorize_url(api_base: str, client_id: str, redirect_uri: str, state: str) -> str:
    """Where to send the merchant's browser; scopes are space-separated."""
    query = urlencode(
        {
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "response_type": "code",
            "scope": " ".join(SCOPES),
            "state": state,
        }
    )
    return f"{api_base}/oauth/authorize?{query}"


def exchange_code(
    api_base: str,
    client_id: str,
    client_secret: str,
    code: str,
    redirect_uri: str,
    *,
    transport: httpx.BaseTransport | None = None,
) -> Grant:
    """Trade a one-time code (valid 10 minutes) for an access token; never retried."""
    form = {
        "client_id": client_id,
        "client_secret": client_secret,
        "code": code,
        "grant_type": "authorization_code",
        "redirect_uri": redirect_uri,
    }
    try:
        with httpx.Client(timeout=httpx.Timeout(15.0, connect=5.0), transport=transport) as http:
            response = http.post(f"{api_base}/oauth/token", data=form)
    except httpx.TransportError as exc:
        raise ProviderDown(f"ColorMe token endpoint unreachable: {exc}", platform="colorme") from exc
    body = _json(response)
    if response.status_code in (400, 401):
        message = f"{body.get('error', 'invalid_grant')}: {body.get('error_description', '')}"
        raise Unauthorized(message, platform="colorme", status=response.status_code)
    if response.status_code >= 500:
        raise ProviderDown(f"ColorMe token endpoint answered {response.status_code}", platform="colorme")
    if response.status_code != 200 or not body.get("access_token"):
        raise BadResponse("ColorMe token response without access_token", platform="colorme")
    return Grant(access_token=str(body["access_token"]), scope=str(body.get("scope", "")))


def revoke_token(access_token: str) -> bool:
    """ColorMe documents no way to revoke one access token: neither its REST API spec nor its App
    Store API spec has a revocation endpoint (RFC 7009 or other), and tokens never expire. The
    only self-service call, DELETE /appstore/v1/installation.json, uninstalls the app from the
    token's shop, which must not happen to a shop that merely authorised by mistake. So a token
    Okaeri refuses is dropped unused and never stored; the merchant can remove the grant in
    ColorMe's 許可済みアプリケーション一覧. Returns False: nothing was revoked."""
    del access_token
    return False


def _json(response: httpx.Response) -> dict[str, object]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}

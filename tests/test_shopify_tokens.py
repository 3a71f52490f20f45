"""Shopify tokens (issue 15 item 1): expiring offline tokens from the code grant or token
exchange, refreshed before they expire, with the rotated refresh token kept; a replayed code or a
dead refresh token is a refusal the install can show, never a crash loop."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import respx

from connectors.errors import BadResponse, ProviderDown, Unauthorized
from connectors.shopify import oauth

SHOP, NOW = "tokyo-tea.myshopify.com", datetime(2026, 12, 2, 4, 0, tzinfo=UTC)
TOKEN_URL = f"https://{SHOP}/admin/oauth/access_token"
CREDS = {"client_id": "cid", "client_secret": "shpss_0123456789abcdef0123456789abcdef"}
ANSWER = {"access_token": "shpat_new", "scope": "write_orders,read_customers", "expires_in": 3599,
          "refresh_token": "shprt_2", "refresh_token_expires_in": 7_776_000}


def _form(request: httpx.Request) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(request.content.decode()).items()}


def test_the_authorize_link_asks_for_offline_access_on_the_shops_own_admin() -> None:
    url = oauth.authorize_url(SHOP, client_id="cid", scopes=["read_orders", "read_customers"],
                              redirect_uri="https://okaeri.example/install/shopify/callback", state="s1")
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    assert parts.netloc == SHOP and parts.path == "/admin/oauth/authorize"
    assert query["scope"] == ["read_customers,read_orders"] and query["state"] == ["s1"]
    assert "grant_options[]" not in query  # per-user would make an online token


@respx.mock
def test_a_code_becomes_an_expiring_offline_token_with_its_refresh_token() -> None:
    route = respx.post(TOKEN_URL).respond(200, json=ANSWER)
    with httpx.Client() as http:
        grant = oauth.exchange_code(http, SHOP, code="c0de", now=NOW, **CREDS)
    assert _form(route.calls.last.request) == {**CREDS, "code": "c0de", "expiring": "1"}
    assert grant.access_token == "shpat_new" and grant.refresh_token == "shprt_2"
    assert grant.expires_at == NOW + timedelta(seconds=3599)
    assert grant.scopes == {"write_orders", "read_customers"}


@respx.mock
def test_a_replayed_code_is_refused_and_never_retried() -> None:
    route = respx.post(TOKEN_URL).respond(400, json={"error": "invalid_grant",
                                                     "error_description": "authorization code was not found or was already used"})
    with httpx.Client() as http, pytest.raises(Unauthorized):
        oauth.exchange_code(http, SHOP, code="used", now=NOW, **CREDS)
    assert route.call_count == 1


@respx.mock
def test_a_code_exchange_that_times_out_is_not_tried_again() -> None:
    route = respx.post(TOKEN_URL).mock(side_effect=httpx.ReadTimeout("slow"))
    with httpx.Client() as http, pytest.raises(ProviderDown):
        oauth.exchange_code(http, SHOP, code="c0de", now=NOW, **CREDS)
    assert route.call_count == 1


@respx.mock
def test_token_exchange_sends_the_id_token_and_rides_out_a_5xx() -> None:
    route = respx.post(TOKEN_URL).mock(side_effect=[httpx.Response(502), httpx.Response(200, json=ANSWER)])
    waits: list[float] = []
    with httpx.Client() as http:
        grant = oauth.exchange_session_token(http, SHOP, id_token="eyJ.id.token", now=NOW, sleep=waits.append, **CREDS)
    form = _form(route.calls.last.request)
    assert form["grant_type"] == "urn:ietf:params:oauth:grant-type:token-exchange"
    assert form["subject_token"] == "eyJ.id.token" and form["expiring"] == "1"
    assert form["requested_token_type"] == "urn:shopify:params:oauth:token-type:offline-access-token"
    assert grant.access_token == "shpat_new" and waits == [0.5]


@respx.mock
def test_a_refresh_keeps_the_replacement_refresh_token_and_the_granted_scopes() -> None:
    old = oauth.ShopifyGrant("shpat_old", frozenset({"read_orders"}), NOW, "shprt_1", NOW + timedelta(days=90))
    route = respx.post(TOKEN_URL).respond(200, json={**ANSWER, "scope": None, "refresh_token": "shprt_3"})
    with httpx.Client() as http:
        fresh = oauth.refresh(http, SHOP, grant=old, now=NOW, **CREDS)
    assert _form(route.calls.last.request)["refresh_token"] == "shprt_1"
    assert (fresh.access_token, fresh.refresh_token, fresh.scopes) == ("shpat_new", "shprt_3", {"read_orders"})


@respx.mock
def test_a_dead_refresh_token_says_the_shop_must_authorise_again() -> None:
    respx.post(TOKEN_URL).respond(400, json={"error": "invalid_grant"})
    old = oauth.ShopifyGrant("shpat_old", frozenset(), NOW, "shprt_dead")
    with httpx.Client() as http, pytest.raises(Unauthorized):
        oauth.refresh(http, SHOP, grant=old, now=NOW, **CREDS)
    with httpx.Client() as http, pytest.raises(Unauthorized):
        oauth.refresh(http, SHOP, grant=oauth.ShopifyGrant("legacy", frozenset(), None), now=NOW, **CREDS)


@respx.mock
@pytest.mark.parametrize("answer", [httpx.Response(200, json={"scope": "read_orders"}), httpx.Response(200, text="<html>"),
                                    httpx.Response(404, json={"errors": "Not Found"})])
def test_an_answer_without_a_token_is_a_bad_response(answer: httpx.Response) -> None:
    respx.post(TOKEN_URL).mock(return_value=answer)
    with httpx.Client() as http, pytest.raises(BadResponse):
        oauth.exchange_code(http, SHOP, code="c", now=NOW, **CREDS)


def test_write_scopes_cover_their_read_scopes_and_a_missing_one_is_named() -> None:
    assert oauth.missing_scopes({"read_orders", "write_pixels"}, {"write_orders", "write_pixels"}) == set()
    assert oauth.missing_scopes({"read_customers", "read_orders"}, {"read_orders"}) == {"read_customers"}


def test_a_token_is_refreshed_five_minutes_before_it_expires_and_a_legacy_one_never() -> None:
    grant = oauth.ShopifyGrant("t", frozenset(), NOW + timedelta(minutes=6))
    assert not oauth.needs_refresh(grant, NOW) and oauth.needs_refresh(grant, NOW + timedelta(minutes=1, seconds=1))
    assert not oauth.needs_refresh(oauth.ShopifyGrant("t", frozenset(), None), NOW + timedelta(days=999))


def test_a_foreign_shop_domain_never_reaches_a_request() -> None:
    with httpx.Client() as http, pytest.raises(ValueError):
        oauth.exchange_code(http, "evil.com", code="c", now=NOW, **CREDS)

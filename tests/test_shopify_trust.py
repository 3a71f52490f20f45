"""Shopify's trust boundary (issue 15, first part): a stranger cannot install into, open or feed
a shop — the install query, the embedded admin's session token and every webhook are verified
before anything is read, and each refusal names its reason."""
from __future__ import annotations

import time
from urllib.parse import urlencode

import jwt
import pytest

from connectors.errors import BadSignature
from connectors.shopify.query_hmac import QueryRefused, sign_query, verify_query
from connectors.shopify.session_token import SessionTokenRefused, verify_session_token
from connectors.shopify.shop_domain import InvalidShopDomain, parse_shop_domain
from connectors.shopify.webhook_delivery import verify_delivery
from connectors.signatures import hmac_sha256_b64

SECRET, CLIENT_ID, NOW = "shpss_0123456789abcdef0123456789abcdef", "client-id-123", 1_780_000_000.0


def _install_query(secret: str = SECRET, **overrides: str) -> str:
    params = {"shop": "tokyo-tea.myshopify.com", "timestamp": str(int(NOW)), "host": "YWRtaW4uc2hvcGlmeS5jb20",
              **overrides}
    pairs = list(params.items())
    return urlencode([*pairs, ("hmac", sign_query(pairs, secret))])


@pytest.mark.parametrize("value", [
    "tokyo-tea.myshopify.com", "Tokyo-Tea.MyShopify.com", "a.myshopify.com"])
def test_a_myshopify_domain_is_accepted_in_lower_case(value: str) -> None:
    assert parse_shop_domain(value) == value.lower()


@pytest.mark.parametrize("value", [
    "evil.com", "tokyo-tea.myshopify.com.evil.com", "evil.com/.myshopify.com", "tokyo-tea.myshopify.com\n",
    "-tea.myshopify.com", "ｔｅａ.myshopify.com", "tea.myshopify.io", "https://tea.myshopify.com", "", None,
    "a" * 70 + ".myshopify.com"])
def test_anything_but_a_myshopify_domain_is_refused(value: object) -> None:
    with pytest.raises(InvalidShopDomain):
        parse_shop_domain(value)


def test_a_signed_install_query_is_read_with_its_parameters() -> None:
    params = verify_query(_install_query(), SECRET, NOW + 30)
    assert params["shop"] == "tokyo-tea.myshopify.com" and params["host"] == "YWRtaW4uc2hvcGlmeS5jb20"


@pytest.mark.parametrize(("query", "now", "reason"), [
    (_install_query(secret="shpss_another_apps_secret_0123456789abcdef"), NOW, "bad_signature"),
    (_install_query().replace("tokyo-tea", "osaka-tea"), NOW, "bad_signature"),  # tampered shop
    (_install_query(), NOW + 91, "stale"),  # captured link replayed later
    (_install_query(), NOW - 91, "stale"),
    (_install_query(timestamp="nan"), NOW, "stale"),
    ("shop=tokyo-tea.myshopify.com&timestamp=1", NOW, "unsigned"),
    (_install_query() + "&hmac=0000", NOW, "unsigned"),  # two hmacs: which one would we trust?
    (_install_query().replace("hmac=", "hmac=%C3%A9"), NOW, "bad_signature"),  # non-ASCII never raises
])
def test_a_tampered_stale_or_unsigned_install_query_is_refused_with_its_reason(query: str, now: float,
                                                                               reason: str) -> None:
    with pytest.raises(QueryRefused) as refused:
        verify_query(query, SECRET, now)
    assert refused.value.reason == reason


def test_repeated_keys_are_signed_comma_joined_like_shopifys_own_validator() -> None:
    pairs = [("ids[]", "1"), ("ids[]", "2"), ("shop", "a.myshopify.com"), ("timestamp", str(int(NOW)))]
    query = urlencode([*pairs, ("hmac", sign_query(pairs, SECRET))])
    assert verify_query(query, SECRET, NOW)["ids[]"] == "1,2"


def _session_token(shop: str = "tokyo-tea.myshopify.com", *, secret: str = SECRET, aud: str = CLIENT_ID,
                   exp: float = NOW + 60, nbf: float = NOW - 5, dest: str | None = None,
                   algorithm: str = "HS256") -> str:
    claims = {"iss": f"https://{shop}/admin", "dest": dest or f"https://{shop}", "aud": aud, "sub": "42",
              "exp": int(exp), "nbf": int(nbf), "iat": int(nbf), "jti": "j1", "sid": "s1"}
    return jwt.encode(claims, secret, algorithm=algorithm)


def test_a_session_token_opens_the_shop_it_was_issued_for() -> None:
    token = verify_session_token(_session_token(), client_id=CLIENT_ID, client_secret=SECRET, now=NOW)
    assert (token.shop, token.user_id, token.session_id) == ("tokyo-tea.myshopify.com", "42", "s1")


@pytest.mark.parametrize(("token", "reason"), [
    (_session_token(secret="shpss_another_apps_secret_0123456789abcdef"), "signature"),
    (_session_token(aud="another-app"), "audience"),
    (_session_token(exp=NOW - 60), "expired"),
    (_session_token(nbf=NOW + 60), "not_yet_valid"),
    # issued by shop A's admin for shop B: a token for A never opens B
    (_session_token(dest="https://osaka-tea.myshopify.com"), "shop_mismatch"),
    (_session_token(shop="evil.com"), "shop_mismatch"),
    (jwt.encode({"iss": "https://a.myshopify.com/admin"}, SECRET, algorithm="HS256"), "malformed"),
    (jwt.encode({"aud": CLIENT_ID}, key=None, algorithm="none"), "malformed"),  # alg none
    ("not.a.jwt", "malformed"),
    ("", "missing"),
])
def test_a_forged_expired_or_foreign_session_token_is_refused(token: str, reason: str) -> None:
    with pytest.raises(SessionTokenRefused) as refused:
        verify_session_token(token, client_id=CLIENT_ID, client_secret=SECRET, now=NOW)
    assert refused.value.reason == reason


def _headers(body: bytes, secret: str = SECRET, **overrides: str) -> dict[str, str]:
    return {"x-shopify-hmac-sha256": hmac_sha256_b64(secret, body), "x-shopify-topic": "orders/create",
            "x-shopify-shop-domain": "tokyo-tea.myshopify.com", "x-shopify-webhook-id": "b54557e4-bdd9-4b37",
            "x-shopify-triggered-at": "2026-12-02T01:02:03.123Z", "x-shopify-api-version": "2026-10", **overrides}


def test_a_signed_webhook_is_described_by_its_headers() -> None:
    body = b'{"id": 820982911946154508}'
    delivery = verify_delivery(body, _headers(body), [SECRET])
    assert (delivery.topic, delivery.shop, delivery.webhook_id) == ("orders/create", "tokyo-tea.myshopify.com",
                                                                    "b54557e4-bdd9-4b37")
    assert delivery.triggered_at is not None and delivery.triggered_at.isoformat().startswith("2026-12-02T01:02:03")


def test_a_webhook_signed_with_the_previous_secret_still_verifies_during_a_rotation() -> None:
    body = b'{"id": 1}'
    assert verify_delivery(body, _headers(body, secret="old-secret"), [SECRET, "old-secret"]).topic == "orders/create"


@pytest.mark.parametrize("topic", ["customers/data_request", "customers/redact", "shop/redact", "orders/create"])
def test_a_webhook_with_a_bad_signature_is_a_401_before_its_body_is_read(topic: str) -> None:
    body = b'{"shop_domain": "tokyo-tea.myshopify.com"'  # not even JSON: never parsed
    for headers in (_headers(body, secret="forger", **{"x-shopify-topic": topic}),
                    {k: v for k, v in _headers(body).items() if k != "x-shopify-hmac-sha256"},
                    _headers(body, **{"x-shopify-hmac-sha256": "é" * 44})):
        with pytest.raises(BadSignature) as refused:
            verify_delivery(body, headers, [SECRET])
        assert refused.value.status == 401


@pytest.mark.parametrize("override", [{"x-shopify-topic": "orders/paid-but-unknown"},
                                      {"x-shopify-shop-domain": "evil.com"}, {"x-shopify-webhook-id": ""}])
def test_a_signed_webhook_with_bad_headers_is_refused_as_bad_input(override: dict[str, str]) -> None:
    body = b"{}"
    with pytest.raises(ValueError):
        verify_delivery(body, _headers(body, **override), [SECRET])


def test_the_clock_used_by_the_checks_is_the_callers() -> None:
    # a token valid for the caller's frozen clock, whatever the wall clock says
    assert verify_session_token(_session_token(exp=NOW + 60), client_id=CLIENT_ID, client_secret=SECRET,
                                now=NOW).expires_at < time.time() + 10**9

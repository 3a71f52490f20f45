"""The console inside Shopify admin: authenticated by the App Bridge session token (a bearer JWT,
HS256 with the client secret, aud = the API key, exp/nbf, dest = the shop) instead of the cookie;
a token opens its own shop and no other."""
from __future__ import annotations

import jwt
from fastapi.testclient import TestClient
from sqlalchemy import update

from plugin.storage.models import Shop
from plugin.web.app import create_app
from tests.shopify_app import API_KEY, API_SECRET, DOMAIN, OTHER, install_by_code_grant, the_shop

HTML = {"accept": "text/html"}


def _installed(runtime, sandbox) -> TestClient:  # type: ignore[no-untyped-def]
    """Both sandbox shops installed (A inside the admin, B by code grant), B renamed so pages tell them apart;
    the client keeps B's signed-in cookie."""
    client = TestClient(create_app(runtime))
    assert client.get(f"/shopify/app?{sandbox.launch_query(DOMAIN, embedded=True)}",
                      follow_redirects=False).status_code == 303
    assert install_by_code_grant(client, sandbox, OTHER).status_code == 303
    with runtime.sessions() as session:
        session.execute(update(Shop).where(Shop.external_id == OTHER).values(name="別の茶舗"))
        session.commit()
    return client


def _bearer(token: str) -> dict[str, str]:
    return {**HTML, "authorization": f"Bearer {token}"}


def test_a_session_token_opens_its_own_shop_and_not_the_cookies_shop(shopify_runtime, sandbox) -> None:  # type: ignore[no-untyped-def]
    client = _installed(shopify_runtime, sandbox)
    # Given the browser holds shop B's cookie, when App Bridge calls with shop A's session token
    page = client.get("/app/settings", headers=_bearer(sandbox.session_token(DOMAIN)))
    # Then shop A's console answers, never shop B's
    assert page.status_code == 200 and "サンドボックス茶舗" in page.text and "別の茶舗" not in page.text
    # And without the token the cookie still opens B, outside the admin
    assert "別の茶舗" in client.get("/app/settings", headers=HTML).text


def test_the_id_token_shopify_adds_to_a_page_load_authenticates_it(shopify_runtime, sandbox) -> None:  # type: ignore[no-untyped-def]
    _installed(shopify_runtime, sandbox)
    fresh = TestClient(create_app(shopify_runtime))  # no cookie at all, as inside the admin frame
    page = fresh.get(f"/app/settings?embedded=1&id_token={sandbox.session_token(DOMAIN)}", headers=HTML)
    assert page.status_code == 200 and "サンドボックス茶舗" in page.text
    assert fresh.get("/app/settings", headers=HTML).status_code == 401


def test_a_token_for_shop_a_carrying_shop_bs_destination_is_refused(shopify_runtime, sandbox, clock) -> None:  # type: ignore[no-untyped-def]
    client = _installed(shopify_runtime, sandbox)
    now = int(clock.now().timestamp())
    mixed = jwt.encode({"iss": f"https://{DOMAIN}/admin", "dest": f"https://{OTHER}", "aud": API_KEY, "sub": "1",
                        "exp": now + 60, "nbf": now - 1}, API_SECRET, algorithm="HS256")
    answer = client.get("/app/settings", headers=_bearer(mixed))
    assert answer.status_code == 401 and "管理画面のセッションを確認できませんでした" in answer.text


def test_tokens_that_do_not_hold_are_401_and_never_fall_back_to_the_cookie(shopify_runtime, sandbox, clock) -> None:  # type: ignore[no-untyped-def]
    client = _installed(shopify_runtime, sandbox)
    now = int(clock.now().timestamp())
    claims = {"iss": f"https://{DOMAIN}/admin", "dest": f"https://{DOMAIN}", "aud": API_KEY, "sub": "1",
              "exp": now + 60, "nbf": now - 1}
    refused = {
        "another app's audience": jwt.encode({**claims, "aud": "someone-elses-app"}, API_SECRET, algorithm="HS256"),
        "a wrong secret": jwt.encode(claims, "not-our-secret-0123456789abcdef-0123", algorithm="HS256"),
        "expired": jwt.encode({**claims, "exp": now - 120, "nbf": now - 180}, API_SECRET, algorithm="HS256"),
        "not yet valid": jwt.encode({**claims, "nbf": now + 120, "exp": now + 180}, API_SECRET, algorithm="HS256"),
        "unsigned": jwt.encode(claims, None, algorithm="none"),  # type: ignore[arg-type]
        "garbage": "not-a-jwt",
    }
    for why, token in refused.items():
        answer = client.get("/app/settings", headers=_bearer(token))
        assert answer.status_code == 401, why
        assert "別の茶舗" not in answer.text and "サンドボックス茶舗" not in answer.text, why


def test_a_valid_token_for_a_shop_without_okaeri_is_403(shopify_runtime, sandbox) -> None:  # type: ignore[no-untyped-def]
    client = _installed(shopify_runtime, sandbox)
    answer = client.get("/app/settings", headers=_bearer(sandbox.session_token("third-tea.myshopify.com")))
    assert answer.status_code == 403 and "インストールされていません" in answer.text


def test_a_form_posted_inside_the_admin_is_authorised_by_the_session_token(shopify_runtime, sandbox) -> None:  # type: ignore[no-untyped-def]
    client = _installed(shopify_runtime, sandbox)
    token = sandbox.session_token(DOMAIN)
    page = client.get("/app/settings", headers=_bearer(token))
    csrf = page.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    answer = client.post("/app/settings/standard-scenarios", data={"enabled": "1", "csrf": csrf},
                         headers=_bearer(token), follow_redirects=False)
    assert answer.status_code == 303
    # the redirect keeps the console inside the admin: the next page load carries a session token
    assert "id_token=" in answer.headers["location"]
    shop_a = the_shop(shopify_runtime, DOMAIN)
    assert shop_a is not None
    with shopify_runtime.sessions() as session:
        from plugin.storage.models import ScenarioSetting
        enabled = session.query(ScenarioSetting).filter_by(shop_id=shop_a.id, enabled=True).count()
    assert enabled > 0


def test_embedded_pages_may_be_framed_by_the_shops_admin_only(shopify_runtime, sandbox) -> None:  # type: ignore[no-untyped-def]
    client = _installed(shopify_runtime, sandbox)
    page = client.get("/app/settings", headers=_bearer(sandbox.session_token(DOMAIN)))
    policy = page.headers["content-security-policy"]
    assert policy == f"frame-ancestors https://{DOMAIN} https://admin.shopify.com"


def test_embedded_pages_load_app_bridge_and_pages_outside_the_admin_do_not(shopify_runtime, sandbox) -> None:  # type: ignore[no-untyped-def]
    client = _installed(shopify_runtime, sandbox)
    inside = client.get("/app/settings", headers=_bearer(sandbox.session_token(DOMAIN)))
    assert f'<meta name="shopify-api-key" content="{API_KEY}">' in inside.text and "app-bridge.js" in inside.text
    assert int(inside.headers["content-length"]) == len(inside.content)
    outside = client.get("/app/settings", headers=HTML)
    assert "app-bridge.js" not in outside.text and "content-security-policy" not in outside.headers


def test_an_expired_session_token_on_the_app_url_is_refused_and_installs_nothing(shopify_runtime, sandbox, clock) -> None:  # type: ignore[no-untyped-def]
    from plugin.demo.sandbox.shopify_oauth import signed_launch_query

    now = int(clock.now().timestamp())
    stale = jwt.encode({"iss": f"https://{DOMAIN}/admin", "dest": f"https://{DOMAIN}", "aud": API_KEY, "sub": "1",
                        "exp": now - 120, "nbf": now - 180}, API_SECRET, algorithm="HS256")
    query = signed_launch_query({"shop": DOMAIN, "timestamp": str(now), "embedded": "1", "id_token": stale}, API_SECRET)
    answer = TestClient(create_app(shopify_runtime)).get(f"/shopify/app?{query}", headers=HTML, follow_redirects=False)
    assert answer.status_code == 401 and "管理画面のセッションを確認できませんでした" in answer.text
    assert the_shop(shopify_runtime, DOMAIN) is None

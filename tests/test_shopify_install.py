"""Installing Okaeri into a Shopify shop (the sandbox shop over real HTTP): the code grant from the
app URL, token exchange inside the admin, each refused step a clear Japanese 4xx that stores
nothing, tokens kept encrypted and refreshed, uninstall then reinstall."""
from __future__ import annotations

import json
import threading
from datetime import timedelta
from urllib.parse import urlencode, urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from connectors.errors import Unauthorized
from connectors.signatures import hmac_sha256_b64
from plugin.demo.sandbox.shopify_oauth import signed_launch_query
from plugin.install.lifecycle import sync_installed_shop
from plugin.storage.models import InstallState, Message, MessageStatus, Shop
from plugin.sync.run import open_connector
from plugin.sync.tokens import StoredTokens
from plugin.web.app import create_app
from tests.factories import make_customer, make_message
from tests.shopify_app import API_SECRET, DOMAIN, OTHER, authorize_redirect, install_by_code_grant, the_shop

HTML = {"accept": "text/html"}


def _client(runtime) -> TestClient:  # type: ignore[no-untyped-def]
    return TestClient(create_app(runtime))


def _uninstall_hook(client: TestClient, shop: str = DOMAIN, webhook_id: str = "wh-1") -> httpx.Response:
    body = json.dumps({"id": 1, "myshopify_domain": shop}).encode()
    return client.post("/shopify/webhooks", content=body, headers={  # type: ignore[return-value]
        "X-Shopify-Hmac-Sha256": hmac_sha256_b64(API_SECRET, body), "X-Shopify-Topic": "app/uninstalled",
        "X-Shopify-Shop-Domain": shop, "X-Shopify-Webhook-Id": webhook_id, "X-Shopify-API-Version": "2026-10"})


# Happy paths -------------------------------------------------------------------------------

def test_a_merchant_opening_the_app_url_installs_by_code_grant_with_tokens_encrypted(shopify_runtime, sandbox, clock) -> None:  # type: ignore[no-untyped-def]
    client = _client(shopify_runtime)
    # When the merchant opens the app from Shopify's admin, approves, and Shopify calls back
    answer = install_by_code_grant(client, sandbox)
    # Then the console opens, signed in, and the shop is active with its tokens encrypted at rest
    assert answer.status_code == 303 and answer.headers["location"] == "/app/"
    shop = the_shop(shopify_runtime)
    assert shop is not None and shop.state == InstallState.active and shop.name == "サンドボックス茶舗"
    access = shopify_runtime.cipher.decrypt(shop.access_token_encrypted)
    refresh = shopify_runtime.cipher.decrypt(shop.refresh_token_encrypted)
    assert access.startswith("shpat_") and access not in shop.access_token_encrypted
    assert refresh.startswith("shprt_") and refresh not in shop.refresh_token_encrypted
    assert shop.token_expires_at == clock.now() + timedelta(hours=1)
    assert "read_customers" in shop.scopes.split(",")
    assert client.get("/app/settings", headers=HTML).status_code == 200


def test_inside_the_admin_the_session_token_is_exchanged_for_an_expiring_offline_token(shopify_runtime, sandbox) -> None:  # type: ignore[no-untyped-def]
    client = _client(shopify_runtime)
    # When Shopify opens the app in its admin frame with an id token
    answer = client.get(f"/shopify/app?{sandbox.launch_query(embedded=True)}", follow_redirects=False)
    # Then no OAuth page is shown: the token is exchanged, and the console opens on that session token
    assert answer.status_code == 303 and answer.headers["location"].startswith("/app/?")
    shop = the_shop(shopify_runtime)
    assert shop is not None and shop.state == InstallState.active and shop.refresh_token_encrypted
    console = client.get(answer.headers["location"], headers=HTML)
    assert console.status_code == 200 and "サンドボックス茶舗" in console.text


def test_an_installed_shop_opening_the_app_again_goes_to_its_console(shopify_runtime, sandbox) -> None:  # type: ignore[no-untyped-def]
    install_by_code_grant(_client(shopify_runtime), sandbox)
    fresh_browser = _client(shopify_runtime)
    answer = fresh_browser.get(f"/shopify/app?{sandbox.launch_query()}", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/app/"
    assert fresh_browser.get("/app/settings", headers=HTML).status_code == 200


def test_a_copied_app_link_signs_no_second_browser_in(shopify_runtime, sandbox) -> None:  # type: ignore[no-untyped-def]
    install_by_code_grant(_client(shopify_runtime), sandbox)
    link = f"/shopify/app?{sandbox.launch_query()}"
    assert _client(shopify_runtime).get(link, follow_redirects=False).status_code == 303
    copier = _client(shopify_runtime)
    _refused(copier.get(link, headers=HTML, follow_redirects=False), 400, "このリンクはすでに使われています")
    shuffled = "/shopify/app?" + "&".join(reversed(link.split("?", 1)[1].split("&")))
    _refused(copier.get(shuffled, headers=HTML, follow_redirects=False), 400, "このリンクはすでに使われています")
    assert copier.get("/app/settings", headers=HTML).status_code == 401


# Refusals: each a 4xx in Japanese, nothing stored -----------------------------------------

def _refused(answer: httpx.Response, status: int, words: str) -> None:
    assert answer.status_code == status, answer.text
    assert words in answer.text, answer.text


def test_a_tampered_hmac_on_the_app_url_is_refused(shopify_runtime, sandbox) -> None:  # type: ignore[no-untyped-def]
    query = sandbox.launch_query().replace(DOMAIN, OTHER)  # same hmac, another shop
    answer = _client(shopify_runtime).get(f"/shopify/app?{query}", headers=HTML, follow_redirects=False)
    _refused(answer, 400, "署名を確認できませんでした")
    assert the_shop(shopify_runtime, OTHER) is None and "okaeri_oauth" not in answer.headers.get("set-cookie", "")


def test_a_stale_timestamp_is_refused(shopify_runtime, sandbox, clock) -> None:  # type: ignore[no-untyped-def]
    query = sandbox.launch_query()
    clock.at += timedelta(seconds=91)
    answer = _client(shopify_runtime).get(f"/shopify/app?{query}", headers=HTML, follow_redirects=False)
    _refused(answer, 400, "有効期限が切れています")
    assert the_shop(shopify_runtime) is None


def test_a_shop_outside_myshopify_com_is_refused_even_when_signed(shopify_runtime, sandbox, clock) -> None:  # type: ignore[no-untyped-def]
    query = signed_launch_query({"shop": "evil.example.com", "timestamp": str(int(clock.now().timestamp()))}, API_SECRET)
    answer = _client(shopify_runtime).get(f"/shopify/app?{query}", headers=HTML, follow_redirects=False)
    _refused(answer, 400, "ショップのアドレスが Shopify のものではありません")
    with shopify_runtime.sessions() as session:
        assert session.execute(select(Shop)).first() is None


def test_a_callback_with_a_bad_state_is_refused(shopify_runtime, sandbox, clock) -> None:  # type: ignore[no-untyped-def]
    client = _client(shopify_runtime)
    path, query = authorize_redirect(client, sandbox)
    query.pop("hmac")
    query["state"] = "not-the-state-this-browser-was-given"
    answer = client.get(f"{path}?{signed_launch_query(query, API_SECRET)}", headers=HTML, follow_redirects=False)
    _refused(answer, 400, "インストールの手続きと一致しません")
    assert the_shop(shopify_runtime) is None


def test_a_callback_whose_hmac_does_not_verify_is_refused(shopify_runtime, sandbox) -> None:  # type: ignore[no-untyped-def]
    client = _client(shopify_runtime)
    path, query = authorize_redirect(client, sandbox)
    query["code"] = "a-code-someone-else-chose"
    answer = client.get(f"{path}?{urlencode(query)}", headers=HTML, follow_redirects=False)
    _refused(answer, 400, "署名を確認できませんでした")
    assert the_shop(shopify_runtime) is None


def test_a_callback_naming_another_shop_than_the_one_authorising_is_refused(shopify_runtime, sandbox) -> None:  # type: ignore[no-untyped-def]
    client = _client(shopify_runtime)
    path, query = authorize_redirect(client, sandbox, DOMAIN)
    query.pop("hmac")
    query["shop"] = OTHER
    answer = client.get(f"{path}?{signed_launch_query(query, API_SECRET)}", headers=HTML, follow_redirects=False)
    _refused(answer, 400, OTHER)
    assert the_shop(shopify_runtime, OTHER) is None and the_shop(shopify_runtime, DOMAIN) is None


def test_a_replayed_code_is_refused_and_changes_nothing(shopify_runtime, sandbox) -> None:  # type: ignore[no-untyped-def]
    client = _client(shopify_runtime)
    path, query = authorize_redirect(client, sandbox)
    callback = f"{path}?{urlencode(query)}"
    assert client.get(callback, follow_redirects=False).status_code == 303
    token_before = the_shop(shopify_runtime).access_token_encrypted  # type: ignore[union-attr]
    # When the same callback comes again (a reload, or someone who captured it)
    client.cookies.set("okaeri_oauth", "")
    again = _client(shopify_runtime)
    _refused(again.get(callback, headers=HTML, follow_redirects=False), 400, "期限切れになったか、見つかりません")
    # Then the install keeps the token it had, and the code went to Shopify once
    assert the_shop(shopify_runtime).access_token_encrypted == token_before  # type: ignore[union-attr]


def test_the_same_callback_twice_in_one_browser_is_refused_the_second_time(shopify_runtime, sandbox) -> None:  # type: ignore[no-untyped-def]
    client = _client(shopify_runtime)
    launch = client.get(f"/shopify/app?{sandbox.launch_query()}", follow_redirects=False)
    state_cookie = client.cookies.get("okaeri_oauth")
    approved = httpx.get(launch.headers["location"], follow_redirects=False)
    callback = urlsplit(approved.headers["location"])
    assert client.get(f"{callback.path}?{callback.query}", follow_redirects=False).status_code == 303
    client.cookies.set("okaeri_oauth", state_cookie or "")  # the cookie kept by whoever replays
    _refused(client.get(f"{callback.path}?{callback.query}", headers=HTML, follow_redirects=False), 400,
             "この認可はすでに使われています")


def test_fewer_scopes_granted_than_asked_is_refused_and_stores_no_token(shopify_runtime, sandbox) -> None:  # type: ignore[no-untyped-def]
    sandbox.oauth.scopes = "read_products"
    answer = install_by_code_grant(_client(shopify_runtime), sandbox)
    assert answer.status_code == 400 and "アクセス権がすべては許可されませんでした" in answer.text
    assert the_shop(shopify_runtime) is None


# Tokens ---------------------------------------------------------------------------------

def test_a_token_about_to_expire_is_refreshed_and_the_new_refresh_token_stored(shopify_runtime, sandbox, clock) -> None:  # type: ignore[no-untyped-def]
    install_by_code_grant(_client(shopify_runtime), sandbox)
    before = the_shop(shopify_runtime)
    old_refresh = shopify_runtime.cipher.decrypt(before.refresh_token_encrypted)  # type: ignore[union-attr]
    # When a sync starts 56 minutes later
    clock.at += timedelta(minutes=56)
    connector = open_connector(shopify_runtime, before)  # type: ignore[arg-type]
    try:
        assert connector.fetch_shop().external_id == DOMAIN
    finally:
        connector.close()
    # Then the token was renewed first, once, and the rotated refresh token replaced the used one
    after = the_shop(shopify_runtime)
    assert after.access_token_encrypted != before.access_token_encrypted  # type: ignore[union-attr]
    assert after.token_expires_at == clock.now() + timedelta(hours=1)  # type: ignore[union-attr]
    assert shopify_runtime.cipher.decrypt(after.refresh_token_encrypted) != old_refresh  # type: ignore[union-attr]
    assert sandbox.oauth.refresh_uses[old_refresh] == 1


def test_a_401_refreshes_the_token_and_the_call_goes_through(shopify_runtime, sandbox) -> None:  # type: ignore[no-untyped-def]
    install_by_code_grant(_client(shopify_runtime), sandbox)
    shop = the_shop(shopify_runtime)
    sandbox.shops[DOMAIN].issued.clear()  # Shopify no longer takes the stored token
    connector = open_connector(shopify_runtime, shop)  # type: ignore[arg-type]
    try:
        assert connector.fetch_shop().name == "サンドボックス茶舗"
    finally:
        connector.close()
    assert sum(sandbox.oauth.refresh_uses.values()) == 1


def test_concurrent_workers_refresh_once_and_never_reuse_a_refresh_token(shopify_runtime, sandbox, clock) -> None:  # type: ignore[no-untyped-def]
    install_by_code_grant(_client(shopify_runtime), sandbox)
    shop = the_shop(shopify_runtime)
    old_refresh = shopify_runtime.cipher.decrypt(shop.refresh_token_encrypted)  # type: ignore[union-attr]
    clock.at += timedelta(minutes=58)
    platform = shopify_runtime.platforms.get("shopify")
    sources = [StoredTokens(shopify_runtime, platform, shop.id) for _ in range(8)]  # type: ignore[union-attr]
    start, tokens, errors = threading.Barrier(len(sources)), [], []

    def work(source: StoredTokens) -> None:
        start.wait()
        try:
            tokens.append(source.current())
        except Exception as exc:  # noqa: BLE001  (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(s,)) for s in sources]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    # Then every worker got the one new token, and Shopify saw the old refresh token exactly once
    assert errors == [] and len(set(tokens)) == 1 and len(tokens) == 8
    assert sandbox.oauth.refresh_uses[old_refresh] == 1 and sum(sandbox.oauth.refresh_uses.values()) == 1
    assert sum(s.refreshes for s in sources) == 1
    stored = the_shop(shopify_runtime)
    assert shopify_runtime.cipher.decrypt(stored.access_token_encrypted) == tokens[0]  # type: ignore[union-attr]
    assert stored.token_refresh_holder == "" and stored.token_refresh_until is None  # type: ignore[union-attr]


def test_a_dead_refresh_token_revokes_the_install(shopify_runtime, sandbox, clock) -> None:  # type: ignore[no-untyped-def]
    install_by_code_grant(_client(shopify_runtime), sandbox)
    shop = the_shop(shopify_runtime)
    sandbox.oauth.refresh_tokens.clear()
    clock.at += timedelta(hours=2)
    with pytest.raises(Unauthorized):
        sync_installed_shop(shopify_runtime, shop.id)  # type: ignore[union-attr]
    after = the_shop(shopify_runtime)
    assert after.state == InstallState.revoked and not after.access_token_encrypted  # type: ignore[union-attr]
    assert not after.refresh_token_encrypted  # type: ignore[union-attr]


# Uninstall and reinstall ----------------------------------------------------------------

def test_uninstall_stops_sending_drops_tokens_and_a_reinstall_works(shopify_runtime, sandbox, session, clock) -> None:  # type: ignore[no-untyped-def]
    client = _client(shopify_runtime)
    install_by_code_grant(client, sandbox)
    shop = the_shop(shopify_runtime)
    pending = make_message(session, shop, make_customer(session, shop, clock.now()), clock.now())  # type: ignore[arg-type]
    # When Shopify reports the app uninstalled (and retries the same delivery)
    first, retry = _uninstall_hook(client), _uninstall_hook(client)
    assert first.status_code == 200 and first.json()["changed"] is True
    assert retry.status_code == 200 and retry.json()["changed"] is False
    # Then sending stopped at once and no token is left
    gone = the_shop(shopify_runtime)
    assert gone.state == InstallState.uninstalled and gone.access_token_encrypted == ""  # type: ignore[union-attr]
    assert gone.refresh_token_encrypted == "" and gone.token_expires_at is None  # type: ignore[union-attr]
    session.expire_all()
    assert session.get(Message, pending.id).status == MessageStatus.cancelled  # type: ignore[union-attr]
    # When the merchant installs again from the App Store
    again = install_by_code_grant(_client(shopify_runtime), sandbox)
    assert again.status_code == 303
    back = the_shop(shopify_runtime)
    assert back.state == InstallState.active and back.id == shop.id and back.access_token_encrypted  # type: ignore[union-attr]


def test_an_unsigned_uninstall_is_401_and_changes_nothing(shopify_runtime, sandbox) -> None:  # type: ignore[no-untyped-def]
    client = _client(shopify_runtime)
    install_by_code_grant(client, sandbox)
    answer = client.post("/shopify/webhooks", content=b"{}", headers={
        "X-Shopify-Hmac-Sha256": "bm90IGEgc2lnbmF0dXJl", "X-Shopify-Topic": "app/uninstalled",
        "X-Shopify-Shop-Domain": DOMAIN, "X-Shopify-Webhook-Id": "wh-forged"})
    assert answer.status_code == 401
    assert the_shop(shopify_runtime).state == InstallState.active  # type: ignore[union-attr]


def test_the_colorme_install_routes_still_serve_colorme(shopify_runtime) -> None:  # type: ignore[no-untyped-def]
    # ColorMe has no app URL of its own: the managed-install route is Shopify's only
    assert _client(shopify_runtime).get("/colorme/app?shop=x").status_code == 404


def test_an_install_missing_a_scope_the_app_now_needs_is_sent_through_authorisation_again(shopify_runtime, sandbox) -> None:  # type: ignore[no-untyped-def]
    # Given an install whose stored grant predates a scope the app asks for now
    client = _client(shopify_runtime)
    install_by_code_grant(client, sandbox)
    with shopify_runtime.sessions() as session:
        shop = session.execute(select(Shop).where(Shop.external_id == DOMAIN)).scalar_one()
        shop.scopes = "read_customers,read_orders,read_products"
        session.commit()
    # When the merchant opens the app from the admin
    answer = _client(shopify_runtime).get(f"/shopify/app?{sandbox.launch_query()}", follow_redirects=False)
    # Then Shopify's authorisation page asks for the full set, not the console
    assert answer.status_code == 303 and "/admin/oauth/authorize?" in answer.headers["location"]
    assert "write_pixels" in answer.headers["location"]


def test_a_revoked_install_is_authorised_again_from_the_settings_page_link(shopify_runtime, sandbox) -> None:  # type: ignore[no-untyped-def]
    from plugin.install.lifecycle import open_app_url, revoke_install

    client = _client(shopify_runtime)
    install_by_code_grant(client, sandbox)
    shop = the_shop(shopify_runtime)
    revoke_install(shopify_runtime, shop.id, "401")  # type: ignore[union-attr]
    start = client.get(open_app_url(shopify_runtime, shopify_runtime.platforms.get("shopify"), DOMAIN)
                       .removeprefix("http://okaeri.test"), follow_redirects=False)
    start = client.get(start.headers["location"].removeprefix("http://okaeri.test"), follow_redirects=False)
    approved = httpx.get(start.headers["location"], follow_redirects=False)
    callback = urlsplit(approved.headers["location"])
    assert client.get(f"{callback.path}?{callback.query}", follow_redirects=False).status_code == 303
    assert the_shop(shopify_runtime).state == InstallState.active  # type: ignore[union-attr]


def test_the_redirect_uri_is_under_the_apps_public_url_when_it_has_its_own(shopify_runtime) -> None:  # type: ignore[no-untyped-def]
    from plugin.install.lifecycle import callback_url

    platform = shopify_runtime.platforms.get("shopify")
    assert callback_url(shopify_runtime, platform) == "http://okaeri.test/shopify/oauth/callback"
    tunnelled = platform.configured({**shopify_runtime.settings.platform_settings,
                                     "SHOPIFY_APP_URL": "https://okaeri-dev.example.net/"})
    assert callback_url(shopify_runtime, tunnelled) == "https://okaeri-dev.example.net/shopify/oauth/callback"

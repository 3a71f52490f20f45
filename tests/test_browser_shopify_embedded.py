"""The console inside Shopify admin, in a real browser: App Bridge is loaded from Shopify's CDN
(stubbed here: the test has no network), the first page opens by the `id_token` Shopify adds, and
every console link and form the merchant uses afterwards carries a fresh session token from App
Bridge — with no cookie at all, as in a third-party frame."""
from __future__ import annotations

from pathlib import Path

import pytest

from connectors.shopify.embedded import APP_BRIDGE_URL
from plugin.channels.choice import rule_of
from tests.live import serve
from tests.shopify_app import DOMAIN, install_by_code_grant, sandbox, shopify_runtime, the_shop  # noqa: F401
from tests.test_browser import page  # noqa: F401 (page: the Chromium page fixture)

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_inside_the_admin_links_and_forms_carry_the_session_token_and_never_need_a_cookie(
        page, shopify_runtime, sandbox, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    from fastapi.testclient import TestClient

    from plugin.demo.mailcatcher import free_port
    from plugin.web.app import create_app

    app = create_app(shopify_runtime)
    assert install_by_code_grant(TestClient(app), sandbox, DOMAIN).status_code == 303  # installed, elsewhere
    shop = the_shop(shopify_runtime)
    assert shop is not None
    asked: list[str] = []

    def app_bridge(route) -> None:  # type: ignore[no-untyped-def]
        # What App Bridge gives the page: `shopify.idToken()`, a fresh session token each time
        asked.append(route.request.url)
        route.fulfill(content_type="application/javascript",
                      body="window.shopify = {idToken: function () { return fetch('/__token').then(function (r) "
                           "{ return r.text(); }); }};")

    tokens: list[str] = []

    def fresh_token(route) -> None:  # type: ignore[no-untyped-def]
        tokens.append(sandbox.session_token(DOMAIN))
        route.fulfill(content_type="text/plain", body=tokens[-1])

    page.route(APP_BRIDGE_URL, app_bridge)
    port = free_port()
    page.route(f"http://127.0.0.1:{port}/__token", fresh_token)
    with serve(app, port):
        base = f"http://127.0.0.1:{port}"
        # Given the merchant opens the app in the admin (Shopify adds the id_token to the first load)
        page.goto(f"{base}/app/settings?embedded=1&id_token={sandbox.session_token(DOMAIN)}")
        assert asked == [APP_BRIDGE_URL]  # the page loads App Bridge from Shopify's CDN
        assert page.locator('meta[name="shopify-api-key"]').count() == 1
        from plugin.web.deps import SESSION_COOKIE

        assert SESSION_COOKIE not in {c["name"] for c in page.context.cookies()}  # no session to fall back on
        # When they follow a console link
        page.click('nav.console a[data-nav="line"]')
        page.wait_for_url("**/app/line?**")
        # Then the next page opened with a token App Bridge gave just then
        assert "id_token=" in page.url and len(tokens) == 1
        assert "LINE 公式アカウント" in page.locator("h1").first.inner_text()
        # And a form posts with a fresh token too; its redirect keeps the merchant inside the admin
        page.check('input[name=rule][value=own_only]')
        page.click("#channel-rule button")
        page.wait_for_url("**/app/line?done=rule**")
        assert "配信チャネルのルールを保存しました" in page.locator("#done").inner_text()
        assert len(tokens) == 2
        page.screenshot(path=str(tmp_path / "embedded-line.png"), full_page=True)
        # A form whose confirmation the merchant cancels is not sent (nor given a token)
        account_id = _line_account(shopify_runtime, shop.id or 0)
        page.reload()
        page.once("dialog", lambda dialog: dialog.dismiss())
        page.click(f'tr[data-account="{account_id}"] form.remove-account button')
        page.wait_for_timeout(300)
        assert _accounts(shopify_runtime) == 1 and len(tokens) == 2
        # and one they confirm is
        page.once("dialog", lambda dialog: dialog.accept())
        page.click(f'tr[data-account="{account_id}"] form.remove-account button')
        page.wait_for_url("**/app/line?done=removed**")
        assert _accounts(shopify_runtime) == 0 and len(tokens) == 3
    with shopify_runtime.sessions() as session:
        assert rule_of(session, shop.id or 0, shopify_runtime.channels).preferred == ""


def _line_account(runtime, shop_id: int) -> int:  # type: ignore[no-untyped-def]
    from plugin.storage.models import LineAccount

    with runtime.sessions() as session:
        account = LineAccount(shop_id=shop_id, name="本店", webhook_key="k" * 32, secret_encrypted=runtime.cipher.encrypt("s"),
                              token_encrypted=runtime.cipher.encrypt("t"), created_at=runtime.clock.now())
        session.add(account)
        session.commit()
        return account.id or 0


def _accounts(runtime) -> int:  # type: ignore[no-untyped-def]
    from sqlalchemy import func, select

    from plugin.storage.models import LineAccount

    with runtime.sessions() as session:
        return int(session.execute(select(func.count()).select_from(LineAccount)).scalar_one())

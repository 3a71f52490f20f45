"""A revoked install in a real browser: the settings page says why and how to resume, in Japanese
first, and the merchant resumes from it."""
from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from connectors.errors import Unauthorized
from plugin.install.lifecycle import sync_installed_shop
from plugin.storage.models import InstallState, Shop
from plugin.sync.run import UnknownShop
from tests import test_browser
from tests.live import live_demo, wait_until
from tests.test_browser import install_in_browser

page = test_browser.page  # Chromium, or a skip with the reason

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _shop(stack) -> Shop:  # type: ignore[no-untyped-def]
    with stack.runtime.sessions() as session:
        return session.execute(select(Shop)).scalar_one()


def test_a_revoked_shop_reads_why_on_its_settings_page_and_resumes_from_it(page, settings, broker, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with live_demo(settings, broker) as stack:
        install_in_browser(page, stack)
        # Given the merchant withdrew Okaeri's permission in ColorMe, and the next sync met a 401
        assert page.request.post(f"{stack.base_url}/sandbox/admin/revoke").ok
        try:
            sync_installed_shop(stack.runtime, _shop(stack).id or 0)
        except (Unauthorized, UnknownShop):  # the demo's own background sync may meet the 401 first
            pass
        assert wait_until(lambda: _shop(stack).state == InstallState.revoked, timeout=30)
        # When they open the settings page
        page.goto(f"{stack.base_url}/app/settings")
        # Then it says, in Japanese, that Okaeri stopped, why, what happened to sending, and how to resume
        assert page.locator("#install-state h2").inner_text() == "Okaeri は停止しています"
        assert "ColorMe が Okaeri のアクセス権を受け付けなくなりました" in page.locator("#why").inner_text()
        assert "送信待ちだったメッセージは送りません" in page.locator("#stopped").inner_text()
        assert page.locator("#resume").inner_text() == "ColorMe でアクセスを許可する"
        page.screenshot(path=str(tmp_path / "revoked-ja.png"), full_page=True)
        # and in English one click away
        page.click("text=English")
        assert page.locator("#install-state h2").inner_text() == "Okaeri is stopped"
        assert page.locator("#resume").inner_text() == "Grant access in ColorMe"
        page.screenshot(path=str(tmp_path / "revoked-en.png"), full_page=True)
        # When they press the button and approve again in ColorMe
        page.click("#resume")
        page.click("#approve")
        page.wait_for_url(f"{stack.base_url}/app/")
        # Then the install is active again
        assert _shop(stack).state == InstallState.active

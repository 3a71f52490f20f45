"""The merchant's pages in a real browser (Debian's Chromium driven by Playwright)."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import require_service
from tests.live import live_demo, synced, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slow]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture
def page(tmp_path: Path):  # type: ignore[no-untyped-def]
    require_service("chromium", os.path.exists(CHROMIUM), "install Debian's chromium package (.ci/run does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser.new_page(locale="ja-JP")
        browser.close()


def install_in_browser(page, stack) -> None:  # type: ignore[no-untyped-def]
    """What a merchant does in the shop admin: install, approve, land on the dashboard; then the
    first sync finishes."""
    page.goto(f"{stack.base_url}/sandbox/")
    page.click("#install")
    page.click("#approve")
    page.wait_for_url(f"{stack.base_url}/app/")  # installing lands on the dashboard
    assert wait_until(lambda: synced(stack), timeout=120), "the first sync did not finish"


def test_merchant_installs_from_the_shop_admin_and_turns_scenarios_on(page, settings, broker, tmp_path) -> None:  # type: ignore[no-untyped-def]
    with live_demo(settings, broker) as stack:
        # Given a merchant in the shop admin who installs Okaeri and approves the scopes
        page.goto(f"{stack.base_url}/sandbox/")
        page.click("#install")
        page.click("#approve")
        page.wait_for_url(f"{stack.base_url}/app/")
        page.goto(f"{stack.base_url}/app/settings")
        assert page.locator("#standard-state").inner_text() == "OFF"
        assert wait_until(lambda: synced(stack), timeout=120)
        # When they press the one switch
        page.click("#standard-switch")
        # Then the page says the standard scenarios are on, in Japanese
        assert page.locator("#standard-state").inner_text() == "ON"
        assert page.locator("tr[data-scenario=cart_recovery] td").first.inner_text() == "カゴ落ちリマインド"
        # And the sending rules are the shop's own: quiet hours from 22:00, two messages a day
        page.click("#rules-link")
        page.fill("input[name=quiet_start_hour]", "22")
        page.fill("input[name=cap_count]", "2")
        page.click("#rules button")
        page.wait_for_load_state()
        assert page.locator("input[name=quiet_start_hour]").input_value() == "22"
        assert page.locator("input[name=cap_count]").input_value() == "2"
        page.goto(f"{stack.base_url}/app/settings")
        page.screenshot(path=str(tmp_path / "settings.png"), full_page=True)
        # and English is one click away
        page.click("text=English")
        assert "Standard scenarios" in page.locator("#standard h2").inner_text()

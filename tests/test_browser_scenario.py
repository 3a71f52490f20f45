"""The scenario page in a real browser (Debian's Chromium driven by Playwright): the queue says
why messages wait, a searched customer's mail is previewed, and a test send comes back confirmed."""
from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from plugin.gates.rules import ShopRules
from plugin.storage.models import Customer, Message, MessageStatus, Shop
from tests.conftest import require_service
from tests.live import live_demo, wait_until
from tests.test_browser import ARGS, CHROMIUM, install_in_browser

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def page(tmp_path: Path):  # type: ignore[no-untyped-def]
    require_service("chromium", os.path.exists(CHROMIUM), "install Debian's chromium package (.ci/run does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser.new_page(locale="ja-JP")
        browser.close()


def _queue_a_night_message_and_a_capped_one(stack) -> Customer:  # type: ignore[no-untyped-def]
    """Two waiting post-purchase mails as the tick writes them: one written at night (quiet hours),
    one capped by a cart reminder sent an hour ago. Returns the capped mail's customer."""
    now = stack.runtime.clock.now()
    with stack.runtime.sessions() as session:
        shop = session.execute(select(Shop)).scalar_one()
        night, capped = session.execute(select(Customer).where(Customer.shop_id == shop.id, Customer.email != "")
                                        .order_by(Customer.id).limit(2)).scalars().all()
        eight = ShopRules.of(shop).next_allowed(now.replace(hour=14))  # 23:00 in Tokyo → the next 08:00
        sent_at = now - timedelta(hours=1)

        def row(customer: Customer, key: str, **fields) -> Message:  # type: ignore[no-untyped-def]
            return Message(shop_id=shop.id, customer_id=customer.id, scenario_key=key, trigger_key=f"{key}:{customer.id}",
                           trigger_kind="post", trigger_step="thanks", to_address=customer.email, created_at=now, **fields)

        session.add_all([
            row(night, "post_purchase", status=MessageStatus.pending, scheduled_at=eight,
                decision=f"cap=ok;quiet=deferred@{eight.isoformat()};holdout=treatment"),
            row(capped, "cart_recovery", status=MessageStatus.sent, scheduled_at=sent_at, sent_at=sent_at,
                decision="cap=ok;quiet=ok;holdout=treatment"),
            row(capped, "post_purchase", status=MessageStatus.pending, scheduled_at=sent_at + timedelta(hours=24),
                decision="cap=deferred;holdout=treatment")])
        session.commit()
        return capped


def test_a_merchant_reads_the_queue_previews_a_customer_and_test_sends(page, settings, broker, tmp_path) -> None:  # type: ignore[no-untyped-def]
    with live_demo(settings, broker) as stack:
        # Given an installed shop whose post-purchase queue holds a night mail and a capped one
        install_in_browser(page, stack)
        customer = _queue_a_night_message_and_a_capped_one(stack)
        # When the merchant opens the post-purchase scenario from the settings page
        page.goto(f"{stack.base_url}/app/settings")
        page.click("tr[data-scenario=post_purchase] a.scenario-link")
        page.wait_for_url("**/app/scenarios/post_purchase")
        # Then the queue says why each waits: until 08:00, and capped by the named cart reminder
        reasons = page.locator("#queue td.reason").all_inner_texts()
        assert any("配信しない時間帯" in r and "08:00 まで待っています" in r for r in reasons), reasons
        assert any("頻度上限" in r and "優先度の高い「カゴ落ちリマインド」" in r for r in reasons), reasons
        page.screenshot(path=str(tmp_path / "scenario.png"), full_page=True)
        # When they search a customer by name and preview their mail
        page.fill("#customer-search input[name=q]", customer.name)
        page.click("#customer-search button")
        page.click(f"#found a[data-customer='{customer.id}']")
        assert customer.name in page.locator("#preview-of").inner_text()
        frame = page.frame_locator("#preview-frame")
        assert customer.name in frame.locator("body").inner_text()
        # And send it to themselves: back on the page, with a confirmation
        page.click("#test-send button")
        page.wait_for_url("**/app/scenarios/post_purchase?**")
        confirmation = page.locator("#test-sent").inner_text()
        assert "テストメールを" in confirmation and "宛てに送信しました" in confirmation and customer.name in confirmation
        assert wait_until(lambda: any(m["Subject"].startswith("[テスト送信]") for m in stack.catcher.snapshot()), timeout=10)
        page.screenshot(path=str(tmp_path / "scenario-sent.png"), full_page=True)

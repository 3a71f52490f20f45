"""The customer page in a real browser (Debian's Chromium driven by Playwright)."""
from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from plugin.storage.consent import suppress
from plugin.storage.models import Customer, Message, MessageStatus
from tests.live import live_demo, wait_until
from tests.test_browser import install_in_browser, page  # noqa: F401 (page: the Chromium page fixture)

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _pending(stack):  # type: ignore[no-untyped-def]
    with stack.runtime.sessions() as session:
        return session.execute(select(func.count()).select_from(Message)
                               .where(Message.status == MessageStatus.pending)).scalar_one() > 0


def test_merchant_finds_a_customer_and_reads_why_a_message_was_held_back(page, settings, broker, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    with live_demo(settings, broker) as stack:
        # Given a merchant who installed Okaeri and switched the standard scenarios on
        install_in_browser(page, stack)
        page.goto(f"{stack.base_url}/app/settings")
        page.click("#standard-switch")
        assert wait_until(lambda: _pending(stack), timeout=120)
        # and a customer with a message waiting who then unsubscribed
        with stack.runtime.sessions() as session:
            message = session.execute(select(Message).where(Message.status == MessageStatus.pending)
                                      .order_by(Message.id).limit(1)).scalar_one()
            customer = session.get(Customer, message.customer_id)
            assert customer is not None
            suppress(session, message.shop_id, message.channel, message.to_address, "unsubscribed",
                     stack.runtime.clock.now(), source="unsubscribe link")
            session.commit()
        # When the merchant searches for the customer by email and opens them
        page.click("a[data-nav=customers]")
        page.wait_for_url(f"{stack.base_url}/app/customers")
        assert "メールアドレス、お名前" in page.locator("#search-empty").inner_text()
        page.fill("#q", customer.email)
        page.click("#search-button")
        page.click(f"tr[data-customer='{customer.id}'] a")
        page.wait_for_url(f"{stack.base_url}/app/customers/{customer.id}")
        # Then the timeline says, in Japanese, that the message was held back and why
        held = page.locator(f"article[data-message='{message.id}']")
        assert held.locator(".state").inner_text() == "送信見送り"
        assert "お客様が配信停止したため送信を見送りました" in held.inner_text()
        # and the consent shows the opt-out with its source
        assert "unsubscribe link" in page.locator("#consent").inner_text()
        page.screenshot(path=str(tmp_path / "customer.png"), full_page=True)
        # And English is one click away
        page.click("text=English")
        assert "Held back" in page.locator(f"article[data-message='{message.id}'] .state").inner_text()

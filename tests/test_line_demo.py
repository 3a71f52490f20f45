"""End to end in the sandbox demo: customers who linked LINE get cart recovery on LINE, the others
by mail, and the console's customer page says which channel each took and why."""
from __future__ import annotations

import html
import re

import httpx
import pytest
from sqlalchemy import select

from plugin.demo.line_demo import connect_line
from plugin.demo.sandbox.visitors import simulate_visitors
from plugin.demo.stack import install_via_browser_flow
from plugin.storage.models import LineLink, Message, MessageStatus
from tests.live import live_demo, synced, wait_until
from tests.test_end_to_end import settled

pytestmark = pytest.mark.slow


def test_a_linked_customer_gets_cart_recovery_on_line_and_an_unlinked_one_by_mail(settings, broker) -> None:  # type: ignore[no-untyped-def]
    with live_demo(settings, broker) as stack, \
            httpx.Client(base_url=stack.base_url, follow_redirects=True, timeout=30) as browser:
        # Given the installed sandbox shop with baskets left, and half its customers linked on LINE
        install_via_browser_flow(browser)
        assert wait_until(lambda: synced(stack), timeout=120)
        assert simulate_visitors(stack.sandbox, stack.runtime.clock.now()) > 0
        assert stack.line is not None and connect_line(stack.runtime, stack.line) > 0
        with stack.runtime.sessions() as session:
            linked = set(session.execute(select(LineLink.customer_id)).scalars())
        # When the merchant presses the one switch
        page = browser.get("/app/settings")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        browser.post("/app/settings/standard-scenarios", data={"csrf": csrf, "enabled": "1"})
        assert wait_until(lambda: settled(stack), timeout=90)
        # Then cart reminders went on LINE to linked customers and by mail to the others
        with stack.runtime.sessions() as session:
            sent = session.execute(select(Message).where(Message.scenario_key == "cart_recovery",
                                                         Message.status == MessageStatus.sent)).scalars().all()
        on_line = [m for m in sent if m.channel == "line"]
        by_mail = [m for m in sent if m.channel == "email"]
        assert on_line and by_mail
        assert {m.customer_id for m in on_line} <= linked and not {m.customer_id for m in by_mail} & linked
        pushed = {p.to for p in stack.line.pushes}
        assert {m.to_address.split(":", 1)[1] for m in on_line} <= pushed
        assert all(p.messages[0]["type"] == "text" for p in stack.line.pushes)
        # and the customer page gives the channel and the reason for both
        browser.get("/demo/login")
        line_page = html.unescape(browser.get(f"/app/customers/{on_line[0].customer_id}").text)
        mail_page = html.unescape(browser.get(f"/app/customers/{by_mail[0].customer_id}").text)
        assert "配信チャネル: LINE（連携済み・受信可能なため）" in line_page
        assert "配信チャネル: メール（LINEは未連携のため）" in mail_page
        assert browser.get("/demo/line").status_code == 200

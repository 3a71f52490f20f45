"""The whole Shopify path over HTTP, as `okaeri demo --platform shopify` runs it: install into the
sandbox Shopify shop through the real install routes, sync through the GraphQL Admin API, receive a
signed checkout webhook, press the one switch, and the cart reminder goes out with the checkout's
own recovery URL."""
from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from urllib.parse import unquote

import dramatiq
import httpx
import pytest
from sqlalchemy import select

from plugin.clock import OffsetClock
from plugin.demo.mailcatcher import free_port
from plugin.demo.shopify_stack import DOMAIN, install_shopify_via_browser, installed_shop_id, send_abandoned_checkouts
from plugin.demo.stack import DemoStack, build_demo
from plugin.jobs.worker import start_worker
from plugin.settings import Settings
from plugin.storage.models import Cart, InstallState, Message, MessageStatus, Shop
from tests.live import serve, synced, to_shop_noon, wait_until

pytestmark = pytest.mark.slow
SUBJECT = "【サンドボックス茶舗】カートに商品が残っています"


@contextmanager
def live_shopify_demo(settings: Settings, broker: dramatiq.Broker) -> Iterator[DemoStack]:
    port = free_port()
    stack = build_demo(settings, "127.0.0.1", port, seed=42, broker=broker, clock=OffsetClock(to_shop_noon()),
                       platform="shopify")
    worker = start_worker(stack.runtime, threads=4)
    try:
        with serve(stack.app, port):
            yield stack
    finally:
        worker.stop()
        stack.catcher.stop()
        stack.runtime.close_channels()
        stack.runtime.engine.dispose()


def _carts(stack: DemoStack) -> int:
    with stack.runtime.sessions() as session:
        return len(session.execute(select(Cart.id).where(Cart.source == "platform")).all())


def _drained(stack: DemoStack) -> bool:
    with stack.runtime.sessions() as session:
        reminders = session.execute(select(Message.status).where(Message.scenario_key == "cart_recovery")).scalars().all()
    return bool(reminders) and all(s not in (MessageStatus.pending, MessageStatus.sending) for s in reminders)


def test_install_sync_checkout_webhook_and_the_reminder_links_the_recovery_url(settings, broker) -> None:  # type: ignore[no-untyped-def]
    with live_shopify_demo(settings, broker) as stack, \
            httpx.Client(base_url=stack.base_url, follow_redirects=True, timeout=30) as browser:
        demo = stack.shopify
        assert demo is not None
        # Given a merchant who opens Okaeri from the (sandbox) Shopify admin: signed app URL, code grant
        landing = install_shopify_via_browser(browser, demo)
        assert landing.status_code == 200 and str(landing.url).startswith(f"{stack.base_url}/app/")
        with stack.runtime.sessions() as session:
            shop = session.execute(select(Shop).where(Shop.platform == "shopify")).scalar_one()
        assert shop.external_id == DOMAIN and shop.state == InstallState.active and shop.refresh_token_encrypted
        # and the first sync through the GraphQL Admin API (bulk operations)
        assert wait_until(lambda: synced(stack), timeout=120), "first sync did not finish"
        # When buyers abandon checkouts and Shopify reports them (signed checkouts/create webhooks)
        sent = send_abandoned_checkouts(stack.runtime, demo, count=5, idle=timedelta(hours=2))
        assert len(sent) == 5
        assert wait_until(lambda: _carts(stack) == 5, timeout=60), "the checkout webhooks were not applied"
        # and the merchant presses the one switch
        page = browser.get("/app/settings")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        browser.post("/app/settings/standard-scenarios", data={"csrf": csrf, "enabled": "1"})
        # Then each buyer outside the control group gets one cart reminder whose cart link is the
        # recovery URL of their own checkout
        assert wait_until(lambda: _drained(stack), timeout=90), "the cart reminders were not delivered"
        with stack.runtime.sessions() as session:
            controls = set(session.execute(select(Message.to_address).where(
                Message.scenario_key == "cart_recovery", Message.status == MessageStatus.control)).scalars())
        reminders = {m["To"].addresses[0].addr_spec: m for m in stack.catcher.snapshot() if m["Subject"] == SUBJECT}
        expected = {c["email"]: c["abandoned_checkout_url"] for c in sent}
        assert reminders and set(reminders) | controls == set(expected) and not set(reminders) & controls
        for email, mail in reminders.items():
            text = mail.get_body(("plain",)).get_content()
            links = [unquote(u) for u in re.findall(r"[?&]u=([^\s&]+)", text)]
            assert expected[email] in links, text
        assert installed_shop_id(stack.runtime) == shop.id

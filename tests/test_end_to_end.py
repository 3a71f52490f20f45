"""The whole path over HTTP: install into the sandbox shop, sync, switch on, tick, read the mail."""
from __future__ import annotations

import re
from email.header import decode_header

import httpx
import pytest
from sqlalchemy import and_, exists, func, select, text

from plugin.demo.sandbox.visitors import simulate_visitors
from plugin.demo.stack import install_via_browser_flow
from plugin.storage.models import Cart, CartLine, Customer, Lease, Message, MessageStatus, Product, Suppression
from tests.live import live_demo, synced, trained, wait_until

pytestmark = pytest.mark.slow
CART_SUBJECT = "【おかえり珈琲と雑貨】カートに商品が残っています"


def settled(stack) -> bool:  # type: ignore[no-untyped-def]
    """Nothing due is waiting: the tick has finished, every message is sent, held back or scheduled
    for later.

    One statement, so one snapshot: on SQLite each SELECT outside a write runs in its own
    transaction, and two queries could straddle the tick's commit (none busy, then some written:
    "settled" 30 ms after the switch, with every reminder still pending).
    """
    now = stack.runtime.clock.now()
    busy = select(Message.id).where(
        Message.status.in_([MessageStatus.pending, MessageStatus.sending]), Message.scheduled_at <= now)
    ticking = select(Lease.name).where(Lease.name.like("tick:%"))
    with stack.runtime.sessions() as session:
        return bool(session.execute(select(and_(
            exists(select(Message.id)), ~exists(busy), ~exists(ticking)))).scalar())


def _explain(stack, addresses: set[str], switched_at: object) -> str:  # type: ignore[no-untyped-def]
    """Every message and cart of these customers, one per line (a list's repr would be cut short)."""
    with stack.runtime.sessions() as session:
        messages = session.execute(select(
            Message.id, Message.to_address, Message.scenario_key, Message.trigger_key, Message.status,
            Message.created_at, Message.scheduled_at, Message.enqueued_at, Message.decision, Message.last_error)
            .where(Message.to_address.in_(addresses))).all()
        carts = session.execute(select(Customer.email, Cart.id, Cart.revision, Cart.updated_at)
                                .join(Cart, Cart.customer_id == Customer.id).where(Customer.email.in_(addresses))).all()
    lines = [f"switched on at {switched_at}, now {stack.runtime.clock.now()}"]
    return "\n".join(lines + [f"message {tuple(r)}" for r in messages] + [f"cart {tuple(r)}" for r in carts])


def _statistics_match_customers(stack) -> bool:  # type: ignore[no-untyped-def]
    """PostgreSQL's row estimate for customers after the first (full) sync, which analyses what it
    loaded; SQLite keeps none, so there is nothing to check."""
    with stack.runtime.sessions() as session:
        if session.get_bind().dialect.name != "postgresql":
            return True
        estimate = session.execute(text("SELECT reltuples FROM pg_class WHERE oid = 'customers'::regclass")).scalar()
        return estimate == session.execute(select(func.count()).select_from(Customer)).scalar()


def _recipients(stack, scenario: str, status: MessageStatus) -> set[str]:  # type: ignore[no-untyped-def]
    with stack.runtime.sessions() as session:
        return set(session.execute(select(Message.to_address).where(
            Message.scenario_key == scenario, Message.status == status)).scalars())


def _expected_recipients(stack) -> dict[str, set[str]]:  # type: ignore[no-untyped-def]
    """From the database: consenting customers with a non-empty cart idle ≥ 1 h → item names."""
    now = stack.runtime.clock.now()
    from datetime import timedelta

    with stack.runtime.sessions() as session:
        suppressed = set(session.execute(select(Suppression.address)).scalars())
        rows = session.execute(
            select(Customer.email, Product.name)
            .join(Cart, Cart.customer_id == Customer.id).join(CartLine, CartLine.cart_id == Cart.id)
            .join(Product, Product.id == CartLine.product_id)
            .where(Customer.email_consent.is_(True), Cart.updated_at <= now - timedelta(hours=1))
        ).all()
    expected: dict[str, set[str]] = {}
    for email, name in rows:
        if email not in suppressed:
            expected.setdefault(email, set()).add(name)
    return expected


def test_install_sync_switch_on_and_deliver_cart_reminders(settings, broker) -> None:  # type: ignore[no-untyped-def]
    with live_demo(settings, broker) as stack, \
            httpx.Client(base_url=stack.base_url, follow_redirects=True, timeout=30) as browser:
        # Given a merchant who installs Okaeri from the (sandbox) ColorMe admin
        landing = install_via_browser_flow(browser)
        assert landing.status_code == 200 and "定番シナリオ" in landing.text
        assert wait_until(lambda: synced(stack), timeout=120), "first sync did not finish"
        assert wait_until(lambda: trained(stack), timeout=120), "the recommender was not trained after the sync"
        assert _statistics_match_customers(stack), "the full sync left no planner statistics (PostgreSQL)"
        # and storefront visitors who left baskets
        assert simulate_visitors(stack.sandbox, stack.runtime.clock.now()) > 0
        expected = _expected_recipients(stack)
        assert expected, "the seeded visitors should leave idle carts"
        # When the merchant presses the one switch
        page = browser.get("/app/settings")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        switched_at = stack.runtime.clock.now()
        after = browser.post("/app/settings/standard-scenarios", data={"csrf": csrf, "enabled": "1"})
        assert 'id="standard-state" class="on"' in after.text
        # Then every idle cart's owner gets exactly one reminder with their items (or is in the control group)
        assert wait_until(lambda: settled(stack), timeout=90), "the outbox did not drain"
        mails = stack.catcher.snapshot()
        by_recipient = {m["To"].addresses[0].addr_spec: m for m in mails}
        assert len(mails) == len(by_recipient), "nobody gets two scenario messages in 24 h"
        reminders = {e: m for e, m in by_recipient.items() if m["Subject"] == CART_SUBJECT}
        controls = _recipients(stack, "cart_recovery", MessageStatus.control)
        missing = set(expected) - set(reminders) - controls
        assert not missing, _explain(stack, missing, switched_at)
        assert set(reminders) | controls == set(expected) and not set(reminders) & controls
        for email, mail in reminders.items():
            text = mail.get_body(("plain",)).get_content()
            assert all(name in text for name in expected[email])
            assert f"{stack.base_url}/u/" in text
            assert mail["List-Unsubscribe"].strip().startswith(f"<{stack.base_url}/u/")
            # the recommendation block, from the served model, never repeats what is in the cart
            block = text.split("こちらもおすすめです", 1)[1].split("\n--\n", 1)[0]
            recommended = re.findall(r"^・(.+?)　", block, re.M)
            assert len(recommended) == 3 and not set(recommended) & expected[email]
        raw = next(iter(reminders.values())).as_bytes().decode("ascii")  # 7-bit clean: headers are RFC 2047 encoded
        encoded = re.search(r"^Subject: ?(.*(?:\r?\n[ \t].*)*)", raw, re.M).group(1)  # type: ignore[union-attr]
        assert "=?utf-8?b?" in encoded.lower()
        assert "".join(p.decode(c or "ascii") if isinstance(p, bytes) else p for p, c in decode_header(encoded)) \
            == "【おかえり珈琲と雑貨】カートに商品が残っています"


def test_every_preset_delivers_in_the_sandbox_demo(settings, broker) -> None:  # type: ignore[no-untyped-def]
    """Over two days of the demo shop (the clock moved), each preset sends at least one mail."""
    from datetime import timedelta

    from plugin.demo.sandbox.visitors import restock, sold_out_wanted
    from scenarios import SCENARIOS

    with live_demo(settings, broker) as stack, \
            httpx.Client(base_url=stack.base_url, follow_redirects=True, timeout=30) as browser:
        install_via_browser_flow(browser)
        assert wait_until(lambda: synced(stack) and trained(stack), timeout=120)
        simulate_visitors(stack.sandbox, stack.runtime.clock.now())
        restock(stack.sandbox, sold_out_wanted(stack.sandbox), stack.runtime.clock.now())
        stack.runtime.tasks.sync_shop(1)
        assert wait_until(lambda: _restock_synced(stack), timeout=60)
        page = browser.get("/app/settings")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        browser.post("/app/settings/standard-scenarios", data={"csrf": csrf, "enabled": "1"})
        assert wait_until(lambda: settled(stack), timeout=90)
        stack.runtime.clock.offset += timedelta(hours=25)  # the next day: deferred messages fall due
        for _ in range(3):  # the scheduler's rounds (every 30 s in the demo): sweep, then tick
            stack.runtime.tasks.sweep_outbox()
            stack.runtime.tasks.scenario_tick(1)
            assert wait_until(lambda: settled(stack), timeout=90)
            with stack.runtime.sessions() as session:
                sent = set(session.execute(select(Message.scenario_key).where(Message.status == MessageStatus.sent)).scalars())
            if sent == set(SCENARIOS):
                break
        assert sent == set(SCENARIOS), f"never sent: {set(SCENARIOS) - sent}"
        subjects = {m["Subject"] for m in stack.catcher.snapshot()}
        assert "【おかえり珈琲と雑貨】再入荷のお知らせ" in subjects and "【おかえり珈琲と雑貨】お久しぶりです" in subjects


def _restock_synced(stack) -> bool:  # type: ignore[no-untyped-def]
    with stack.runtime.sessions() as session:
        return session.execute(select(Product.id).where(Product.restocked_at.is_not(None))).first() is not None

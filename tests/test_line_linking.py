"""Linking a LINE user to a shop customer: the platform's line_uid directly; otherwise a one-time
code from a signed mailed link, sent inside LINE to the shop's own account — never a guess, never
another customer, never another shop."""
from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from plugin.channels.line_links import Redeemed, issue_code, link_platform_customers, redeem_code
from plugin.console.line_accounts import link_url
from plugin.demo.sandbox.line_api import message_event, signature, webhook_body
from plugin.storage.models import LineLink
from plugin.web.app import create_app
from tests.factories import make_customer, make_shop
from tests.line_support import SECRET, make_line_account


def _links(session):  # type: ignore[no-untyped-def]
    return session.execute(select(LineLink.account_id, LineLink.customer_id, LineLink.line_user_id)).all()


def test_customers_whose_platform_knows_their_line_user_are_linked_to_the_first_account(runtime, session, clock) -> None:  # type: ignore[no-untyped-def]
    shop = make_shop(session, clock.now())
    known = make_customer(session, shop, clock.now(), line_user_id="U" + "a" * 32)
    make_customer(session, shop, clock.now())  # no line_uid: not linked
    first = make_line_account(session, runtime, shop)
    make_line_account(session, runtime, shop, name="渋谷店")
    assert link_platform_customers(session, shop.id, clock.now()) == 1
    assert _links(session) == [(first.id, known.id, "U" + "a" * 32)]
    assert link_platform_customers(session, shop.id, clock.now()) == 0  # again: nothing new


def test_a_mailed_code_sent_inside_line_links_that_customer_once(runtime, session, clock) -> None:  # type: ignore[no-untyped-def]
    shop = make_shop(session, clock.now())
    customer = make_customer(session, shop, clock.now())
    account = make_line_account(session, runtime, shop)
    client = TestClient(create_app(runtime))
    code = issue_code(session, account, customer, clock.now())
    # Given the customer opens the mailed link: its page shows the code to send
    page = client.get(link_url(runtime, code).removeprefix(runtime.settings.base_url))
    assert page.status_code == 200 and f"OKAERI-{code}" in page.text
    assert client.get("/line/link/forged-token").status_code == 400
    # When they send it to the account inside LINE (a signed webhook)
    body = webhook_body(account.bot_user_id, message_event("Ucustomer", f"連携します OKAERI-{code}"))
    answer = client.post(f"/line/webhook/{account.webhook_key}", content=body,
                         headers={"x-line-signature": signature(SECRET, body)})
    # Then that LINE user is that customer on that account, and the link is spent
    assert answer.status_code == 200
    assert _links(session) == [(account.id, customer.id, "Ucustomer")]
    assert redeem_code(session, account, "Uother", code, clock.now()) == Redeemed.used
    assert client.get(link_url(runtime, code).removeprefix(runtime.settings.base_url)).status_code == 410


def test_a_code_cannot_link_across_shops_or_to_another_customer(runtime, session, clock) -> None:  # type: ignore[no-untyped-def]
    shop, other_shop = make_shop(session, clock.now()), make_shop(session, clock.now())
    alice, bob = make_customer(session, shop, clock.now()), make_customer(session, shop, clock.now())
    stranger = make_customer(session, other_shop, clock.now())
    account, other_account = make_line_account(session, runtime, shop), make_line_account(session, runtime, other_shop)
    # A code of one shop sent to another shop's account links nobody
    code = issue_code(session, account, alice, clock.now())
    assert redeem_code(session, other_account, "Ualice", code, clock.now()) == Redeemed.unknown
    # A code can't be issued for another shop's customer
    try:
        issue_code(session, account, stranger, clock.now())
        raise AssertionError("issued across shops")
    except ValueError:
        pass
    # A LINE user linked to Alice cannot become Bob with Bob's code; Alice cannot take a second LINE user
    assert redeem_code(session, account, "Ualice", code, clock.now()) == Redeemed.linked
    assert redeem_code(session, account, "Ualice", issue_code(session, account, bob, clock.now()), clock.now()) == \
        Redeemed.user_taken
    assert redeem_code(session, account, "Umallory", issue_code(session, account, alice, clock.now()), clock.now()) == \
        Redeemed.customer_taken
    # An expired code links nobody
    late = issue_code(session, account, bob, clock.now())
    clock.advance(days=8)
    assert redeem_code(session, account, "Ubob", late, clock.now()) == Redeemed.expired
    assert _links(session) == [(account.id, alice.id, "Ualice")]
    # A guessed code is just unknown
    assert redeem_code(session, account, "Ubob", "ABCDEFGHJK", clock.now()) == Redeemed.unknown


def test_the_merchant_mails_a_link_that_the_customer_confirms_inside_line(runtime, session, clock, catcher) -> None:  # type: ignore[no-untyped-def]
    from plugin.web.deps import SESSION_COOKIE, session_cookie
    from plugin.web.routes.console import _csrf

    shop = make_shop(session, clock.now())
    customer = make_customer(session, shop, clock.now(), email="hanako@example.jp")
    account = make_line_account(session, runtime, shop)
    client = TestClient(create_app(runtime))
    client.cookies.set(SESSION_COOKIE, session_cookie(runtime, shop.id))
    # Given the customer page offers the invitation for a customer not on LINE
    page = client.get(f"/app/customers/{customer.id}", headers={"accept": "text/html"})
    assert f"/app/line/invite/{customer.id}" in page.text
    # When the merchant sends it
    sent = client.post(f"/app/line/invite/{customer.id}", data={"csrf": _csrf(runtime, shop.id)}, follow_redirects=False)
    assert sent.status_code == 303
    # Then the customer's mail holds a signed link whose page shows the code that links them in LINE
    (mail,) = catcher.snapshot()
    text = mail.get_body(("plain",)).get_content()
    url = next(word for word in text.split() if "/line/link/" in word)
    code = TestClient(create_app(runtime)).get(url.removeprefix(runtime.settings.base_url)).text.split("OKAERI-")[1][:10]
    body = webhook_body(account.bot_user_id, message_event("Uhanako", f"OKAERI-{code}"))
    client.post(f"/line/webhook/{account.webhook_key}", content=body, headers={"x-line-signature": signature(SECRET, body)})
    assert _links(session) == [(account.id, customer.id, "Uhanako")]
    # and another shop's merchant cannot invite this customer
    other = make_shop(session, clock.now())
    make_line_account(session, runtime, other)
    client.cookies.set(SESSION_COOKIE, session_cookie(runtime, other.id))
    refused = client.post(f"/app/line/invite/{customer.id}", data={"csrf": _csrf(runtime, other.id)})
    assert refused.status_code == 422 and len(catcher.snapshot()) == 1


def test_redacting_a_customer_removes_their_line_link_and_codes(runtime, session, clock) -> None:  # type: ignore[no-untyped-def]
    from plugin.storage.personal_data import redact_customers

    shop = make_shop(session, clock.now())
    customer, other = make_customer(session, shop, clock.now()), make_customer(session, shop, clock.now())
    account = make_line_account(session, runtime, shop)
    issue_code(session, account, customer, clock.now())
    from tests.line_support import link

    link(session, account, customer, clock.now(), user_id="Ugone")
    link(session, account, other, clock.now(), user_id="Ustays")
    redact_customers(session, shop.id, [customer.id], clock.now())
    session.commit()
    assert [user for _, _, user in _links(session)] == ["Ustays"]


def test_a_customer_synced_with_a_line_uid_is_linked_at_the_next_tick(runtime, session, clock) -> None:  # type: ignore[no-untyped-def]
    from plugin.engine.tick import run_shop_tick

    shop = make_shop(session, clock.now())
    account = make_line_account(session, runtime, shop)
    customer = make_customer(session, shop, clock.now())
    customer.line_user_id = "U" + "b" * 32
    session.add(customer)
    twin = make_customer(session, shop, clock.now(), line_user_id="U" + "b" * 32)  # the same LINE user twice: only one gets it
    run_shop_tick(runtime, shop.id)
    ((account_id, linked, user),) = _links(session)
    assert (account_id, user) == (account.id, "U" + "b" * 32) and linked in (customer.id, twin.id)

"""LINE pushes: what a linked customer receives (text + Flex carousel with tracked links and
Japanese alt text), one X-Line-Retry-Key per logical send reused by every retry, 409 taken as
sent, no retry of a 4xx, and the monthly-quota 429 pausing that account only."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from plugin.channels.line import quota_renews_at
from plugin.delivery.batch import deliver
from plugin.engine.tick import run_shop_tick
from plugin.gates.decisions import explain
from plugin.storage.models import LineAccount, LinePush, Message, MessageStatus
from tests.factories import idle_cart_shop
from tests.line_support import fake_line, link, make_line_account


def _cart_shop_on_line(runtime, session, clock, customers: int = 2, fake=None):  # type: ignore[no-untyped-def]
    fake = fake or fake_line(runtime)
    shop, people, product = idle_cart_shop(session, clock.now(), customers=customers)
    account = make_line_account(session, runtime, shop, fake)
    links = [link(session, account, person, clock.now()) for person in people[:1]]  # the first is linked, the others not
    return fake, shop, people, account, links


def _deliver_all(runtime, handed):  # type: ignore[no-untyped-def]
    return [deliver(runtime, message_id)[0] for message_id, _ in handed]


def test_a_linked_customer_gets_the_cart_reminder_on_line_as_text_and_an_item_carousel(runtime, session, clock, catcher) -> None:  # type: ignore[no-untyped-def]
    # Given a shop with a LINE account, one cart owner linked and following, one not linked
    fake, shop, people, account, links = _cart_shop_on_line(runtime, session, clock)
    # When the tick runs and the worker delivers
    assert _deliver_all(runtime, run_shop_tick(runtime, shop.id)) == ["sent", "sent"]
    # Then the linked customer got one push: a text with the tracked link and a Flex carousel of the cart
    (push,) = fake.pushes
    assert push.to == links[0].line_user_id
    text, flex = push.messages
    assert text["type"] == "text" and "/t/c/" in text["text"] and "/u/" in text["text"]
    assert flex["type"] == "flex" and "商品1点" in flex["altText"]
    (bubble,) = flex["contents"]["contents"]
    assert flex["contents"]["type"] == "carousel" and bubble["body"]["contents"][0]["text"] == "深煎りブレンド 200g"
    assert "/t/c/" in bubble["footer"]["contents"][0]["action"]["uri"]
    # and the other got the mail, and each row says which channel and why
    assert [m["To"].addresses[0].addr_spec for m in catcher.snapshot()] == [people[1].email]
    rows = {m.customer_id: m for m in session.execute(select(Message)).scalars()}
    assert rows[people[0].id].channel == "line" and rows[people[1].id].channel == "email"
    assert "配信チャネル: LINE（連携済み・受信可能なため）" in explain(rows[people[0].id].decision)
    assert "channel: email (not linked on LINE)" in explain(rows[people[1].id].decision, "en")


def test_the_retry_key_is_stored_before_the_first_attempt_and_reused_after_5xx_and_timeouts(runtime, session, clock, catcher) -> None:  # type: ignore[no-untyped-def]
    fake, shop, people, account, _ = _cart_shop_on_line(runtime, session, clock, customers=1)
    (message_id, _), = run_shop_tick(runtime, shop.id)
    # Given LINE answers 500, then times out, then 500 again (three tries of one delivery)
    fake.answer_next(500, "timeout", 500)
    assert deliver(runtime, message_id)[0] == "retry"
    key = session.execute(select(LinePush.retry_key)).scalar_one()
    assert [k for k, _ in fake.requests] == [key, key, key] and fake.pushes == []
    # When the next delivery finds LINE took it but lost the answer (500), then retries
    clock.advance(minutes=5)
    fake.answer_next("accept-then-500")
    assert deliver(runtime, message_id)[0] == "sent"
    # Then the same key went every time, LINE's 409 counted as sent, and the customer got it once
    assert {k for k, _ in fake.requests} == {key}
    assert [status for _, status in fake.requests][-2:] == [500, 409]
    assert len(fake.pushes) == 1
    assert session.get(Message, message_id, populate_existing=True).status == MessageStatus.sent


def test_a_400_is_not_retried_and_fails_the_message(runtime, session, clock, catcher) -> None:  # type: ignore[no-untyped-def]
    fake, shop, _, _, _ = _cart_shop_on_line(runtime, session, clock, customers=1)
    (message_id, _), = run_shop_tick(runtime, shop.id)
    fake.answer_next(400)
    assert deliver(runtime, message_id)[0] == "failed"
    assert len(fake.requests) == 1
    assert "400" in session.get(Message, message_id, populate_existing=True).last_error


def test_the_monthly_quota_429_pauses_that_account_only_and_new_messages_go_by_email(runtime, session, clock, catcher) -> None:  # type: ignore[no-untyped-def]
    # Given two shops on LINE, the first one's monthly quota used up
    fake, shop, people, account, _ = _cart_shop_on_line(runtime, session, clock, customers=1)
    _, other_shop, other_people, other_account, _ = _cart_shop_on_line(runtime, session, clock, customers=1, fake=fake)
    fake_token = runtime.cipher.decrypt(account.token_encrypted)
    fake.exhausted.add(fake_token)
    (first, _), = run_shop_tick(runtime, shop.id)
    (second, _), = run_shop_tick(runtime, other_shop.id)
    # When both are delivered
    outcome, retry_at = deliver(runtime, first)
    # Then the first waits until the quota renews, its account paused; the other shop's went out
    assert outcome == "retry" and retry_at == quota_renews_at(clock.now())
    paused = session.get(LineAccount, account.id, populate_existing=True)
    assert paused.pause_reason == "quota" and paused.paused_until is not None
    assert deliver(runtime, second)[0] == "sent"
    assert session.get(LineAccount, other_account.id, populate_existing=True).paused_until is None
    assert len(fake.requests) == 2  # no retry storm: one 429, one push
    # and the next tick sends the waiting reminder by email instead of next month
    run_shop_tick(runtime, shop.id)
    moved = session.get(Message, first, populate_existing=True)
    assert moved.channel == "email" and moved.to_address == people[0].email and moved.scheduled_at <= clock.now()
    assert deliver(runtime, first)[0] == "sent"
    assert [m["To"].addresses[0].addr_spec for m in catcher.snapshot()] == [people[0].email]
    # and a new cart of the paused shop goes by email, saying why
    from tests.factories import make_cart, make_customer, make_product

    newcomer = make_customer(session, shop, clock.now())
    link(session, account, newcomer, clock.now())
    make_cart(session, shop, newcomer, [make_product(session, shop, clock.now())], clock.now() - timedelta(hours=2))
    written = run_shop_tick(runtime, shop.id)
    row = session.get(Message, written[0][0])
    assert row.channel == "email"
    assert "channel: email (account paused on LINE)" in explain(row.decision, "en")


def test_a_push_line_accepted_before_a_crash_is_not_pushed_again(runtime, session, clock, catcher) -> None:  # type: ignore[no-untyped-def]
    fake, shop, _, _, _ = _cart_shop_on_line(runtime, session, clock, customers=1)
    (message_id, _), = run_shop_tick(runtime, shop.id)
    assert deliver(runtime, message_id)[0] == "sent"
    # Given the worker died after LINE accepted, before the outbox knew (the row is claimable again)
    row = session.get(Message, message_id, populate_existing=True)
    row.status, row.sent_at = MessageStatus.pending, None
    session.add(row)
    session.commit()
    # When it is delivered again
    assert deliver(runtime, message_id)[0] == "sent"
    # Then LINE was not asked again
    assert len(fake.requests) == 1 and len(fake.pushes) == 1

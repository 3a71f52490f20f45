"""Cart recovery as a merchant sees it: who gets a reminder, who does not, and how often."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from plugin.delivery.batch import deliver
from plugin.engine.tick import run_shop_tick
from plugin.storage.models import Message, MessageStatus, Suppression
from tests.factories import idle_cart_shop, make_cart, make_customer, make_order


def _messages(session, shop):  # type: ignore[no-untyped-def]
    session.expire_all()
    return session.execute(select(Message).where(Message.shop_id == shop.id)).scalars().all()


def test_customer_with_idle_cart_gets_one_reminder(runtime, session, clock):  # type: ignore[no-untyped-def]
    # Given three customers who left a cart two hours ago
    shop, people, product = idle_cart_shop(session, clock.now())
    # When the scenario ticks
    written = run_shop_tick(runtime, shop.id)
    # Then each gets one pending reminder naming the item
    messages = _messages(session, shop)
    assert len(written) == 3
    assert {m.customer_id for m in messages} == {p.id for p in people}
    assert all(m.status == MessageStatus.pending for m in messages)
    assert all(m.trigger_key.startswith("cart:") for m in messages)



def test_ten_ticks_write_each_reminder_once(runtime, session, clock):  # type: ignore[no-untyped-def]
    shop, people, _ = idle_cart_shop(session, clock.now())
    for _ in range(10):
        run_shop_tick(runtime, shop.id)
        clock.advance(minutes=5)
    assert len(_messages(session, shop)) == len(people)


def test_cart_younger_than_the_delay_waits(runtime, session, clock):  # type: ignore[no-untyped-def]
    shop, _, product = idle_cart_shop(session, clock.now(), customers=0)
    fresh = make_customer(session, shop, clock.now())
    make_cart(session, shop, fresh, [product], clock.now() - timedelta(minutes=30))
    assert run_shop_tick(runtime, shop.id) == []
    clock.advance(minutes=31)
    assert len(run_shop_tick(runtime, shop.id)) == 1


def test_customer_who_ordered_after_leaving_the_cart_gets_nothing(runtime, session, clock):  # type: ignore[no-untyped-def]
    shop, people, product = idle_cart_shop(session, clock.now(), customers=1)
    make_order(session, shop, people[0], clock.now() - timedelta(minutes=30), [product])
    assert run_shop_tick(runtime, shop.id) == []


def test_cart_older_than_seven_days_is_left_alone(runtime, session, clock):  # type: ignore[no-untyped-def]
    shop, _, product = idle_cart_shop(session, clock.now(), customers=0)
    old = make_customer(session, shop, clock.now())
    make_cart(session, shop, old, [product], clock.now() - timedelta(days=8))
    assert run_shop_tick(runtime, shop.id) == []


def test_unsubscribed_customer_gets_no_cart_reminder(runtime, session, clock):  # type: ignore[no-untyped-def]
    shop, people, _ = idle_cart_shop(session, clock.now(), customers=2)
    session.add(Suppression(shop_id=shop.id, channel="email", address=people[0].email, reason="unsubscribed",
                            created_at=clock.now()))
    session.commit()
    run_shop_tick(runtime, shop.id)
    assert [m.customer_id for m in _messages(session, shop)] == [people[1].id]


def test_customer_without_mail_consent_gets_nothing(runtime, session, clock):  # type: ignore[no-untyped-def]
    shop, _, product = idle_cart_shop(session, clock.now(), customers=0)
    no_consent = make_customer(session, shop, clock.now(), email_consent=False)
    make_cart(session, shop, no_consent, [product], clock.now() - timedelta(hours=3))
    assert run_shop_tick(runtime, shop.id) == []


def test_one_shops_tick_never_touches_another_shops_carts(runtime, session, clock):  # type: ignore[no-untyped-def]
    shop_a, _, _ = idle_cart_shop(session, clock.now(), customers=2)
    shop_b, _, _ = idle_cart_shop(session, clock.now(), customers=1)
    run_shop_tick(runtime, shop_a.id)
    counts = dict(session.execute(select(Message.shop_id, func.count()).group_by(Message.shop_id)).all())
    assert counts == {shop_a.id: 2}
    assert shop_b.id not in counts


def test_reminder_is_in_english_for_an_english_shop(runtime, session, clock):  # type: ignore[no-untyped-def]
    shop, _, _ = idle_cart_shop(session, clock.now(), customers=1)
    shop.locale = "en"
    session.add(shop)
    session.commit()
    (message_id, _), = run_shop_tick(runtime, shop.id)
    assert deliver(runtime, message_id)[0] == "sent"
    session.expire_all()
    assert _messages(session, shop)[0].subject == "[テスト商店] You left something in your cart"


def test_empty_cart_is_not_a_reminder(runtime, session, clock):  # type: ignore[no-untyped-def]
    shop, _, _ = idle_cart_shop(session, clock.now(), customers=0)
    person = make_customer(session, shop, clock.now())
    make_cart(session, shop, person, [], clock.now() - timedelta(hours=2))
    assert run_shop_tick(runtime, shop.id) == []


def test_second_reminder_follows_a_sent_first_once_the_cart_is_idle_24_hours(runtime, session, clock):  # type: ignore[no-untyped-def]
    # Given a cart whose first reminder was sent
    shop, _, product = idle_cart_shop(session, clock.now(), customers=0)
    cart = make_cart(session, shop, make_customer(session, shop, clock.now()), [product], clock.now() - timedelta(hours=2))
    (first, _), = run_shop_tick(runtime, shop.id)
    assert deliver(runtime, first)[0] == "sent"
    # When the cart has been idle for 24 hours and the first is older than the 24-hour cap
    clock.advance(hours=24, minutes=1)
    (second, _), = run_shop_tick(runtime, shop.id)
    # Then a second reminder is written, says which cart revision it is about, and goes out
    message = session.get(Message, second)
    assert (message.trigger_key, message.trigger_kind, message.trigger_ref, message.trigger_step) == \
        (f"cart:{cart.id}:{cart.revision}:2", "cart", cart.id, f"{cart.revision}:2")
    assert deliver(runtime, second)[0] == "sent"
    assert run_shop_tick(runtime, shop.id) == []


def test_reminder_for_a_cart_changed_since_is_cancelled(runtime, session, clock):  # type: ignore[no-untyped-def]
    # Given a reminder written for a cart at its current revision
    shop, _, product = idle_cart_shop(session, clock.now(), customers=0)
    cart = make_cart(session, shop, make_customer(session, shop, clock.now()), [product], clock.now() - timedelta(hours=2))
    (reminder, _), = run_shop_tick(runtime, shop.id)
    # When the customer changes the cart before delivery
    cart.revision += 1
    session.add(cart)
    session.commit()
    # Then the reminder is cancelled
    assert deliver(runtime, reminder)[0] == "cancelled"

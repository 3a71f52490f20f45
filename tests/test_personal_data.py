"""A customer's personal data on request (Shopify's compliance topics, any platform's deletion
request): exported whole, then erased for real — while the shop keeps its anonymous figures and
no other shop's rows are touched."""
from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import func, select

from plugin.gates import decisions
from plugin.storage.consent import record_consent, suppress
from plugin.storage.models import (
    BrowseEvent,
    Cart,
    ConsentRecord,
    Customer,
    Message,
    MessageEvent,
    MessageStatus,
    Order,
    Shop,
    Suppression,
    SurveyAnswer,
    Trigger,
)
from plugin.storage.personal_data import export_customer, redact_customers, redact_shop
from tests.factories import make_cart, make_customer, make_order, make_product, make_shop, make_view


def _message(session, shop, customer, now, status, ref):  # type: ignore[no-untyped-def]
    trigger = Trigger("cart", ref, None)
    message = Message(shop_id=shop.id, customer_id=customer.id, scenario_key="cart_recovery", trigger_key=trigger.key,
                      trigger_kind=trigger.kind, trigger_ref=trigger.ref, trigger_step=trigger.step,
                      to_address=customer.email, subject=f"{customer.name} 様、カートに商品が残っています",
                      decision=decisions.TREATMENT, status=status, scheduled_at=now, created_at=now,
                      sent_at=now if status == MessageStatus.sent else None)
    session.add(message)
    session.commit()
    session.refresh(message)
    return message


def _a_customer_with_a_history(session, shop, now, email):  # type: ignore[no-untyped-def]
    customer = make_customer(session, shop, now, email=email, name="山田 花子", line_user_id="U4af4980629")
    product = make_product(session, shop, now)
    make_order(session, shop, customer, now - timedelta(days=3), [product])
    make_cart(session, shop, customer, [product], now)
    make_view(session, shop, customer, product, now)
    sent = _message(session, shop, customer, now, MessageStatus.sent, 1)
    pending = _message(session, shop, customer, now, MessageStatus.pending, 2)
    session.add(MessageEvent(shop_id=shop.id, message_id=sent.id, kind="click",
                             url=f"https://test.shop-pro.jp/?pid=1&email={email}", occurred_at=now))
    session.add(SurveyAnswer(shop_id=shop.id, customer_id=customer.id, message_id=sent.id, score=9,
                             comment="山田です。とても美味しかったです", answered_at=now, updated_at=now))
    record_consent(session, shop.id, "email", email, True, "signup", now)
    session.commit()
    return customer, sent, pending


def test_a_data_request_exports_everything_held_about_the_customer(session, clock) -> None:  # type: ignore[no-untyped-def]
    shop = make_shop(session, clock.now())
    customer, _, _ = _a_customer_with_a_history(session, shop, clock.now(), "hanako@example.jp")
    export = export_customer(session, shop.id, customer.id)
    assert export is not None
    assert export["customer"]["email"] == "hanako@example.jp" and export["customer"]["line_user_id"] == "U4af4980629"
    assert len(export["orders"]) == 1 and len(export["orders"][0]["lines"]) == 1
    assert {m["status"] for m in export["messages"]} == {"sent", "pending"}
    assert export["consent_records"][0]["address"] == "hanako@example.jp"
    assert export["survey_answers"][0]["score"] == 9 and json.dumps(export, ensure_ascii=False)
    # and another shop cannot export this shop's customer
    assert export_customer(session, make_shop(session, clock.now()).id, customer.id) is None


def test_a_redacted_customer_can_no_longer_be_found_but_the_shops_figures_stay(session, clock) -> None:  # type: ignore[no-untyped-def]
    now = clock.now()
    shop, other = make_shop(session, now), make_shop(session, now)
    customer, sent, pending = _a_customer_with_a_history(session, shop, now, "hanako@example.jp")
    twin, _, twin_pending = _a_customer_with_a_history(session, other, now, "hanako@example.jp")  # same person, other shop
    suppress(session, shop.id, "email", "hanako@example.jp", "unsubscribed", now)  # cancels `pending`
    later = _message(session, shop, customer, now, MessageStatus.pending, 3)  # e.g. a LINE message still due
    revenue_before = session.execute(select(func.sum(Order.total)).where(Order.shop_id == shop.id)).scalar_one()
    # When the shop forwards the customer's deletion request
    report = redact_customers(session, shop.id, [customer.id], now)
    session.commit()
    session.expire_all()
    # Then nothing identifies them: no address, name, LINE id, platform id, consent, cart or views
    gone = session.get(Customer, customer.id)
    assert gone is not None and (gone.email, gone.name, gone.line_user_id, gone.email_consent) == ("", "", None, False)
    assert gone.external_id == f"redacted-{customer.id}"
    for message in (session.get(Message, sent.id), session.get(Message, pending.id), session.get(Message, later.id)):
        assert message is not None and message.to_address == "" and message.subject == ""
    assert session.get(Message, later.id).status == MessageStatus.cancelled  # type: ignore[union-attr]
    assert session.execute(select(MessageEvent.url).where(MessageEvent.message_id == sent.id)).scalar_one() == ""
    for model in (Cart, BrowseEvent):
        assert session.execute(select(func.count()).select_from(model).where(model.customer_id == customer.id)).scalar_one() == 0
    for model in (ConsentRecord, Suppression):
        assert session.execute(select(func.count()).select_from(model).where(model.shop_id == shop.id)).scalar_one() == 0
    assert session.execute(select(SurveyAnswer.comment).where(SurveyAnswer.customer_id == customer.id)).scalar_one() == ""
    # And the shop's figures stay: the order and its revenue, the survey score, the sent message
    assert session.execute(select(func.sum(Order.total)).where(Order.shop_id == shop.id)).scalar_one() == revenue_before
    assert session.execute(select(SurveyAnswer.score).where(SurveyAnswer.customer_id == customer.id)).scalar_one() == 9
    assert (report.customers, report.messages, report.cancelled) == (1, 3, 1)
    # And the same person at another shop is untouched there
    kept = session.get(Customer, twin.id)
    assert kept is not None and kept.email == "hanako@example.jp"
    assert session.get(Message, twin_pending.id).status == MessageStatus.pending  # type: ignore[union-attr]
    assert session.execute(select(func.count()).select_from(ConsentRecord)
                           .where(ConsentRecord.shop_id == other.id)).scalar_one() == 1


def test_a_shop_redact_erases_every_customer_and_the_shops_contacts_and_token(session, clock) -> None:  # type: ignore[no-untyped-def]
    now = clock.now()
    shop, other = make_shop(session, now), make_shop(session, now)
    for n in range(3):
        _a_customer_with_a_history(session, shop, now, f"c{n}@example.jp")
    _a_customer_with_a_history(session, other, now, "keep@example.jp")
    report = redact_shop(session, shop.id, now)
    session.commit()
    session.expire_all()
    emails = session.execute(select(Customer.email).where(Customer.shop_id == shop.id)).scalars().all()
    assert report.customers == 3 and set(emails) == {""}
    erased = session.get(Shop, shop.id)
    assert erased is not None and (erased.owner_email, erased.access_token_encrypted) == ("", "")
    assert session.execute(select(Customer.email).where(Customer.shop_id == other.id)).scalars().all() == ["keep@example.jp"]
    assert session.get(Shop, other.id).access_token_encrypted != ""  # type: ignore[union-attr]


def test_redacting_nobody_changes_nothing(session, clock) -> None:  # type: ignore[no-untyped-def]
    assert redact_customers(session, make_shop(session, clock.now()).id, [], clock.now()).customers == 0

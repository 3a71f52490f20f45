"""An email not opened within 48 h is followed once by the same message on LINE, and only after 48 h."""
from __future__ import annotations

from sqlalchemy import select

from plugin.channels.choice import save_rule
from plugin.delivery.batch import deliver
from plugin.engine.followup import FOLLOW_UP
from plugin.engine.tick import run_shop_tick
from plugin.gates.decisions import explain
from plugin.storage.models import Message, MessageEvent
from tests.factories import idle_cart_shop
from tests.line_support import fake_line, link, make_line_account


def _follow_ups(session) -> list[Message]:  # type: ignore[no-untyped-def]
    return list(session.execute(select(Message).where(Message.trigger_key.like(f"%{FOLLOW_UP}"))
                                .execution_options(populate_existing=True)).scalars())


def test_an_unopened_mail_is_followed_on_line_after_48_hours_once_and_an_opened_one_is_not(runtime, session, clock, catcher) -> None:  # type: ignore[no-untyped-def]
    fake = fake_line(runtime)
    shop, people, _ = idle_cart_shop(session, clock.now(), customers=2)
    account = make_line_account(session, runtime, shop, fake)
    # Given both got the cart reminder by mail (not linked yet), then linked their LINE; the second opened the mail
    mails = {session.get(Message, i).customer_id: i for i, _ in run_shop_tick(runtime, shop.id)}
    assert [deliver(runtime, i)[0] for i in mails.values()] == ["sent", "sent"]
    for person in people:
        link(session, account, person, clock.now(), user_id=f"U{person.id:032d}")
    session.add(MessageEvent(shop_id=shop.id, message_id=mails[people[1].id], kind="open", occurred_at=clock.now()))
    session.commit()
    # When 47 hours pass: no follow-up yet
    for _ in range(47):
        clock.advance(hours=1)
        for message_id, _ in run_shop_tick(runtime, shop.id):
            deliver(runtime, message_id)
    assert _follow_ups(session) == []
    # When 48 hours have passed
    clock.advance(hours=1, minutes=1)
    for message_id, _ in run_shop_tick(runtime, shop.id):
        deliver(runtime, message_id)
    # Then the first customer's mail is followed on LINE, once; the second (who opened it) is not
    (follow_up,) = _follow_ups(session)
    original = session.get(Message, mails[people[0].id])
    assert (follow_up.customer_id, follow_up.channel, follow_up.scenario_key) == (people[0].id, "line", "cart_recovery")
    assert (follow_up.trigger_ref, follow_up.trigger_step) == (original.trigger_ref, original.trigger_step)
    assert "follow-up: the email message was not opened within 48 h" in explain(follow_up.decision, "en")
    assert follow_up.status == "sent"
    assert [p.to for p in fake.pushes].count(f"U{people[0].id:032d}") >= 1
    for _ in range(3):
        clock.advance(hours=6)
        for message_id, _ in run_shop_tick(runtime, shop.id):
            deliver(runtime, message_id)
    assert len(_follow_ups(session)) == 1


def test_the_shop_can_turn_the_follow_up_off(runtime, session, clock, catcher) -> None:  # type: ignore[no-untyped-def]
    fake = fake_line(runtime)
    shop, people, _ = idle_cart_shop(session, clock.now(), customers=1)
    account = make_line_account(session, runtime, shop, fake)
    save_rule(session, shop.id, ["line"], False, clock.now())
    for message_id, _ in run_shop_tick(runtime, shop.id):
        deliver(runtime, message_id)
    link(session, account, people[0], clock.now())
    clock.advance(hours=49)
    run_shop_tick(runtime, shop.id)
    assert _follow_ups(session) == []

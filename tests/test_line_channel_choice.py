"""Channel choice per customer: LINE when linked and following, otherwise email; consent per
channel; one frequency cap over both channels; the shop's rule can keep everything on email."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from plugin.channels.choice import save_rule
from plugin.delivery.batch import deliver
from plugin.engine.tick import run_shop_tick
from plugin.storage.consent import suppress
from plugin.storage.models import Message
from tests.factories import enable, idle_cart_shop, make_view
from tests.line_support import fake_line, link, make_line_account


def _channels(session) -> dict[int, str]:  # type: ignore[no-untyped-def]
    return dict(session.execute(select(Message.customer_id, Message.channel)).tuples().all())


def test_consent_is_per_channel(runtime, session, clock, catcher) -> None:  # type: ignore[no-untyped-def]
    fake = fake_line(runtime)
    shop, people, _ = idle_cart_shop(session, clock.now(), customers=3)
    account = make_line_account(session, runtime, shop, fake)
    # Given one customer without mail consent but on LINE, one who stopped LINE messages, one with neither
    people[0].email_consent = False
    people[2].email_consent = False
    session.add_all([people[0], people[2]])
    session.commit()
    on_line = link(session, account, people[0], clock.now())
    stopped = link(session, account, people[1], clock.now())
    suppress(session, shop.id, "line", f"{account.id}:{stopped.line_user_id}", "unsubscribed", clock.now(), source="test")
    session.commit()
    # When the tick runs
    run_shop_tick(runtime, shop.id)
    # Then LINE for the first (mail consent is no matter there), mail for the second, nothing for the third
    assert _channels(session) == {people[0].id: "line", people[1].id: "email"}
    assert on_line.line_user_id


def test_the_frequency_cap_counts_both_channels(runtime, session, clock, catcher) -> None:  # type: ignore[no-untyped-def]
    fake = fake_line(runtime)
    shop, people, product = idle_cart_shop(session, clock.now(), customers=1)
    account = make_line_account(session, runtime, shop, fake)
    link(session, account, people[0], clock.now())
    for message_id, _ in run_shop_tick(runtime, shop.id):
        assert deliver(runtime, message_id)[0] == "sent"  # the cart reminder, on LINE
    # Given the shop's rule keeps browse retargeting on email only, and the customer browsed
    save_rule(session, shop.id, [], True, clock.now())
    enable(session, shop, "browse_retargeting", clock.now())
    clock.advance(hours=5)
    make_view(session, shop, people[0], product, clock.now() - timedelta(hours=3))  # after the cart was left
    run_shop_tick(runtime, shop.id)
    # Then the mail waits for the cap the LINE message holds
    mail = session.execute(select(Message).where(Message.scenario_key == "browse_retargeting")).scalar_one()
    assert mail.channel == "email" and "cap=deferred" in mail.decision and mail.scheduled_at > clock.now()

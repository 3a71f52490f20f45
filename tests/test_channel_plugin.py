"""A channel defined only here (it records messages in memory) plugs in through the registry:
the tick writes to its addresses under its consent, delivery renders and sends on it, its
suppression list holds — and no file outside this test knows it exists."""
from __future__ import annotations

from sqlalchemy import ColumnElement, and_, select

from plugin.channels.base import Channel, Draft, OutgoingMessage, PermanentFailure
from plugin.delivery.batch import deliver
from plugin.engine.tick import run_shop_tick
from plugin.storage.models import Customer, Message, MessageStatus, ScenarioSetting, Suppression
from tests.factories import idle_cart_shop


class MemoryChannel(Channel):
    """Reaches customers by their LINE id, with no consent flag of its own: having an id is consent."""

    name = "memory"
    suppression_reason = "blocked"

    def __init__(self) -> None:
        self.sent: list[OutgoingMessage] = []
        self.refuse: set[str] = set()

    def address(self) -> ColumnElement[str]:
        return Customer.__table__.c.line_user_id  # type: ignore[attr-defined,no-any-return]

    def consented(self) -> ColumnElement[bool]:
        column = Customer.__table__.c.line_user_id  # type: ignore[attr-defined]
        return and_(column.is_not(None), column != "")

    def accepts(self, customer: Customer) -> bool:
        return bool(customer.line_user_id)

    def render(self, draft: Draft) -> OutgoingMessage:
        text = f"{draft.variables['customer']['name']}: {len(draft.variables['items'])} item(s) {draft.link(draft.variables['cta_url'])}"
        return OutgoingMessage(draft.message_id, draft.to_address, draft.to_name, draft.from_name, "cart", text, "",
                               draft.unsubscribe_url)

    def send(self, message: OutgoingMessage) -> None:
        if message.to_address in self.refuse:
            raise PermanentFailure("blocked the account")
        self.sent.append(message)


def _cart_reminders_on_memory(runtime, session, clock, customers: int = 3):  # type: ignore[no-untyped-def]
    channel = runtime.channels["memory"] = MemoryChannel()
    shop, people, _ = idle_cart_shop(session, clock.now(), customers=customers)
    setting = session.execute(select(ScenarioSetting).where(ScenarioSetting.shop_id == shop.id)).scalar_one()
    setting.channel = "memory"
    session.add(setting)
    for n, person in enumerate(people):
        person.line_user_id = f"U{n:032x}" if n else None  # the first customer has no LINE id
        person.email_consent = n != 2  # the third never agreed to mail: no matter on this channel
        session.add(person)
    session.commit()
    return channel, shop, people


def test_a_toy_channel_delivers_to_everyone_it_can_reach_and_nobody_else(runtime, session, clock, catcher) -> None:  # type: ignore[no-untyped-def]
    # Given cart recovery set to send on the memory channel
    channel, shop, people = _cart_reminders_on_memory(runtime, session, clock)
    # When the tick runs and the worker delivers
    for message_id, _ in run_shop_tick(runtime, shop.id):
        assert deliver(runtime, message_id)[0] == "sent"
    # Then each customer with a LINE id got one message on it, with a tracked link; no mail went out
    assert sorted(m.to_address for m in channel.sent) == sorted(p.line_user_id for p in people[1:])
    assert all("/t/c/" in m.body_text and "1 item(s)" in m.body_text for m in channel.sent)
    assert catcher.snapshot() == []
    rows = session.execute(select(Message.channel, Message.status)).all()
    assert rows == [("memory", MessageStatus.sent)] * 2


def test_the_toy_channels_suppression_list_wins_and_a_permanent_failure_adds_to_it(runtime, session, clock, catcher) -> None:  # type: ignore[no-untyped-def]
    channel, shop, people = _cart_reminders_on_memory(runtime, session, clock)
    session.add(Suppression(shop_id=shop.id, channel="memory", address=people[1].line_user_id, reason="blocked",
                            created_at=clock.now()))
    session.commit()
    channel.refuse = {people[2].line_user_id}
    handed = run_shop_tick(runtime, shop.id)
    assert [deliver(runtime, message_id)[0] for message_id, _ in handed] == ["failed"]  # people[1] never became a row
    assert channel.sent == []
    reasons = dict(session.execute(select(Suppression.address, Suppression.reason).where(Suppression.channel == "memory")).all())
    assert reasons == {people[1].line_user_id: "blocked", people[2].line_user_id: "blocked"}


def test_a_message_whose_channel_this_process_lacks_is_cancelled_not_sent_elsewhere(runtime, session, clock, catcher) -> None:  # type: ignore[no-untyped-def]
    _, shop, _ = _cart_reminders_on_memory(runtime, session, clock)
    handed = run_shop_tick(runtime, shop.id)
    del runtime.channels["memory"]
    assert {deliver(runtime, message_id)[0] for message_id, _ in handed} == {"cancelled"}
    assert catcher.snapshot() == []


def test_the_unsubscribe_link_of_a_toy_channel_message_stops_that_channel_only(runtime, session, clock, catcher) -> None:  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from plugin.web.app import create_app

    channel, shop, people = _cart_reminders_on_memory(runtime, session, clock, customers=2)
    (message_id, _), = run_shop_tick(runtime, shop.id)
    deliver(runtime, message_id)
    link = channel.sent[0].unsubscribe_url.removeprefix(runtime.settings.base_url)
    assert TestClient(create_app(runtime)).post(link).status_code == 200
    rows = session.execute(select(Suppression.channel, Suppression.address)).all()
    assert rows == [("memory", people[1].line_user_id)]  # the mail address is untouched

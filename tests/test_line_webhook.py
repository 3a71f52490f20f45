"""LINE's webhook: signed with the channel secret or refused (401), each event handled once,
follow/unfollow keeping whom LINE reaches (a blocked customer is reached by email), survey
postbacks landing in the survey results."""
from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from plugin.delivery.batch import deliver
from plugin.demo.sandbox.line_api import follow_event, postback_event, signature, unfollow_event, webhook_body
from plugin.engine.tick import run_shop_tick
from plugin.gates.decisions import explain
from plugin.storage.models import LineLink, Message, Suppression, SurveyAnswer
from plugin.web.app import create_app
from tests.factories import idle_cart_shop
from tests.line_support import SECRET, fake_line, link, make_line_account


def _post(client: TestClient, account, body: bytes, secret: str = SECRET):  # type: ignore[no-untyped-def]
    return client.post(f"/line/webhook/{account.webhook_key}", content=body,
                       headers={"x-line-signature": signature(secret, body), "content-type": "application/json"})


def _setup(runtime, session, clock, customers: int = 1):  # type: ignore[no-untyped-def]
    fake = fake_line(runtime)
    shop, people, product = idle_cart_shop(session, clock.now(), customers=customers)
    account = make_line_account(session, runtime, shop, fake)
    links = [link(session, account, person, clock.now()) for person in people]
    return fake, shop, people, product, account, links, TestClient(create_app(runtime))


def test_a_webhook_with_a_bad_signature_is_refused_and_changes_nothing(runtime, session, clock, catcher) -> None:  # type: ignore[no-untyped-def]
    _, _, _, _, account, links, client = _setup(runtime, session, clock)
    body = webhook_body(account.bot_user_id, unfollow_event(links[0].line_user_id))
    assert _post(client, account, body, secret="somebody-elses-secret").status_code == 401
    assert client.post(f"/line/webhook/{account.webhook_key}", content=body).status_code == 401  # no signature at all
    assert session.get(LineLink, links[0].id, populate_existing=True).following is True
    assert client.post("/line/webhook/no-such-key", content=body).status_code == 404


def test_a_duplicate_event_is_handled_once(runtime, session, clock, catcher) -> None:  # type: ignore[no-untyped-def]
    _, _, _, _, account, links, client = _setup(runtime, session, clock)
    event = unfollow_event(links[0].line_user_id)
    first = _post(client, account, webhook_body(account.bot_user_id, event))
    redelivered = _post(client, account, webhook_body(account.bot_user_id, {**event, "deliveryContext": {"isRedelivery": True}}))
    assert first.json()["handled"] == 1 and redelivered.json()["duplicate"] == 1


def test_unfollow_then_a_tick_the_reminder_goes_by_email_saying_line_is_blocked(runtime, session, clock, catcher) -> None:  # type: ignore[no-untyped-def]
    fake, shop, people, product, account, links, client = _setup(runtime, session, clock, customers=2)
    # Given the second customer blocked the account
    assert _post(client, account, webhook_body(account.bot_user_id, unfollow_event(links[1].line_user_id))).status_code == 200
    # When the tick runs and the worker delivers
    written = run_shop_tick(runtime, shop.id)
    assert [deliver(runtime, i)[0] for i, _ in written] == ["sent", "sent"]
    # Then the first got LINE, the second the mail, and their row says why
    assert [p.to for p in fake.pushes] == [links[0].line_user_id]
    assert [m["To"].addresses[0].addr_spec for m in catcher.snapshot()] == [people[1].email]
    row = session.execute(select(Message).where(Message.customer_id == people[1].id)).scalar_one()
    assert row.channel == "email" and "channel: email (blocked the account on LINE)" in explain(row.decision, "en")
    assert "配信チャネル: メール（LINEはブロックされているため）" in explain(row.decision)
    assert session.execute(select(Suppression.reason).where(Suppression.channel == "line")).scalars().all() == ["blocked"]


def test_a_reminder_waiting_on_line_goes_by_email_once_the_customer_blocks(runtime, session, clock, catcher) -> None:  # type: ignore[no-untyped-def]
    fake, shop, people, product, account, links, client = _setup(runtime, session, clock)
    (message_id, _), = run_shop_tick(runtime, shop.id)
    assert session.get(Message, message_id).channel == "line"
    _post(client, account, webhook_body(account.bot_user_id, unfollow_event(links[0].line_user_id)))
    assert deliver(runtime, message_id)[0] == "sent"
    assert fake.pushes == [] and len(catcher.snapshot()) == 1
    assert "channel: email (blocked the account on LINE)" in explain(
        session.get(Message, message_id, populate_existing=True).decision, "en")


def test_follow_with_is_unblocked_makes_line_reach_them_again(runtime, session, clock, catcher) -> None:  # type: ignore[no-untyped-def]
    fake, shop, people, product, account, links, client = _setup(runtime, session, clock)
    user = links[0].line_user_id
    _post(client, account, webhook_body(account.bot_user_id, unfollow_event(user)))
    # When they unblock the account
    answer = _post(client, account, webhook_body(account.bot_user_id, follow_event(user, unblocked=True)))
    assert answer.status_code == 200 and answer.json()["handled"] == 1
    # Then the link follows again, the block is off the suppression list, and the reminder goes on LINE
    assert session.get(LineLink, links[0].id, populate_existing=True).following is True
    assert session.execute(select(Suppression)).scalars().all() == []
    assert [deliver(runtime, i)[0] for i, _ in run_shop_tick(runtime, shop.id)] == ["sent"]
    assert [p.to for p in fake.pushes] == [user]


def test_a_survey_button_tapped_in_line_records_the_answer_of_that_customer_only(runtime, session, clock, catcher) -> None:  # type: ignore[no-untyped-def]
    from plugin.channels.line_messages import survey_postback
    from plugin.measurement.surveys import survey_token

    fake, shop, people, product, account, links, client = _setup(runtime, session, clock, customers=2)
    (message_id, _), (other_id, _) = run_shop_tick(runtime, shop.id)
    message = session.get(Message, message_id)
    token = survey_token(runtime, shop.id, message.customer_id, message_id, 0)
    mine = next(link for link in links if link.customer_id == message.customer_id)
    theirs = next(link for link in links if link.customer_id != message.customer_id)
    # Given another LINE user taps a copy of the button: nothing is recorded
    _post(client, account, webhook_body(account.bot_user_id, postback_event(theirs.line_user_id, survey_postback(token, 3))))
    assert session.execute(select(SurveyAnswer)).scalars().all() == []
    # When the customer taps 9
    _post(client, account, webhook_body(account.bot_user_id, postback_event(mine.line_user_id, survey_postback(token, 9))))
    # Then their answer is recorded, confirmed (a tap inside LINE is deliberate)
    (answer,) = session.execute(select(SurveyAnswer)).scalars().all()
    assert (answer.score, answer.customer_id, answer.message_id) == (9, message.customer_id, message_id)
    assert answer.confirmed_at is not None


def test_a_signed_body_of_odd_shapes_is_answered_calmly(runtime, session, clock, catcher) -> None:  # type: ignore[no-untyped-def]
    _, _, _, _, account, links, client = _setup(runtime, session, clock)
    for body in (b"not json", b"[1, 2]", b'{"events": "x"}'):
        assert _post(client, account, body).status_code == 400
    odd = b'{"events": [1, {"type": "follow", "source": "x"}, {"type": "message", "source": {"userId": "U1"}, "message": "hi"},' \
          b' {"type": "postback", "source": {"userId": "U1"}, "postback": ["x"]}]}'
    answer = _post(client, account, odd)
    assert answer.status_code == 200 and answer.json()["ignored"] == 2

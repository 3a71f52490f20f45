"""The console's LINE page and the customer page: an account is added only once LINE accepted its
token, its webhook URL is shown, a paused account says so; the customer page says which channel
each message took and why, in Japanese and English."""
from __future__ import annotations

import html

from fastapi.testclient import TestClient
from sqlalchemy import select

from plugin.delivery.batch import deliver
from plugin.engine.tick import run_shop_tick
from plugin.storage.models import LineAccount, Message
from plugin.web.app import create_app
from plugin.web.deps import SESSION_COOKIE, session_cookie
from plugin.web.routes.console import _csrf
from tests.factories import idle_cart_shop, make_shop
from tests.line_support import fake_line, link, make_line_account

HTML = {"accept": "text/html"}


def _client(runtime, shop) -> TestClient:  # type: ignore[no-untyped-def]
    client = TestClient(create_app(runtime))
    client.cookies.set(SESSION_COOKIE, session_cookie(runtime, shop.id))
    return client


def test_an_account_is_added_only_with_a_token_line_accepts_and_shows_its_webhook_url(runtime, session, clock) -> None:  # type: ignore[no-untyped-def]
    fake = fake_line(runtime)
    fake.add_bot("good-token", basic_id="@shop123", name="テスト商店 公式")
    shop = make_shop(session, clock.now())
    client = _client(runtime, shop)
    form = {"csrf": _csrf(runtime, shop.id), "name": "本店", "secret": "s3cret", "token": "wrong-token"}
    # A token LINE refuses: nothing is saved, the reason is on the page in Japanese
    refused = client.post("/app/line/accounts", data=form, headers=HTML)
    assert refused.status_code == 422 and "LINE がこのチャネルアクセストークンを受け付けませんでした" in refused.text
    assert session.execute(select(LineAccount)).scalars().all() == []
    # A good one: saved encrypted, and the page shows the webhook URL to paste into LINE's console
    added = client.post("/app/line/accounts", data={**form, "token": "good-token"}, headers=HTML, follow_redirects=True)
    assert added.status_code == 200
    (account,) = session.execute(select(LineAccount)).scalars().all()
    assert account.basic_id == "@shop123" and "good-token" not in account.token_encrypted
    assert runtime.cipher.decrypt(account.token_encrypted) == "good-token" and "s3cret" not in account.secret_encrypted
    assert f"http://okaeri.test/line/webhook/{account.webhook_key}" in added.text
    english = client.get("/app/line?lang=en", headers=HTML)
    assert "Webhook URL (paste into the LINE Developers console)" in english.text
    assert client.post("/app/line/accounts", data={**form, "csrf": "forged"}, headers=HTML).status_code == 403


def test_a_paused_account_is_shown_as_paused_with_why(runtime, session, clock, catcher) -> None:  # type: ignore[no-untyped-def]
    fake = fake_line(runtime)
    shop, people, _ = idle_cart_shop(session, clock.now(), customers=1)
    account = make_line_account(session, runtime, shop, fake)
    link(session, account, people[0], clock.now())
    fake.exhausted.add(runtime.cipher.decrypt(account.token_encrypted))
    (message_id, _), = run_shop_tick(runtime, shop.id)
    assert deliver(runtime, message_id)[0] == "retry"
    page = _client(runtime, shop).get("/app/line", headers=HTML).text
    assert "一時停止中：今月のメッセージ通数の上限に達しました" in page


def test_the_customer_page_says_which_channel_each_message_took_and_why(runtime, session, clock, catcher) -> None:  # type: ignore[no-untyped-def]
    fake = fake_line(runtime)
    shop, people, _ = idle_cart_shop(session, clock.now(), customers=2)
    account = make_line_account(session, runtime, shop, fake)
    link(session, account, people[0], clock.now())
    for message_id, _ in run_shop_tick(runtime, shop.id):
        deliver(runtime, message_id)
    assert {m.channel for m in session.execute(select(Message)).scalars()} == {"line", "email"}
    client = _client(runtime, shop)
    on_line = html.unescape(client.get(f"/app/customers/{people[0].id}", headers=HTML).text)
    by_mail = html.unescape(client.get(f"/app/customers/{people[1].id}", headers=HTML).text)
    assert "配信チャネル: LINE（連携済み・受信可能なため）" in on_line
    assert "配信チャネル: メール（LINEは未連携のため）" in by_mail
    english = html.unescape(client.get(f"/app/customers/{people[1].id}?lang=en", headers=HTML).text)
    assert "channel: email (not linked on LINE)" in english


def test_removing_an_account_cancels_its_waiting_messages_and_ends_its_links(
        runtime, session, clock, catcher) -> None:  # type: ignore[no-untyped-def]
    from plugin.storage.models import LineLink, MessageStatus

    fake = fake_line(runtime)
    shop, people, _ = idle_cart_shop(session, clock.now(), customers=1)
    account = make_line_account(session, runtime, shop, fake)
    link(session, account, people[0], clock.now())
    (message_id, _), = run_shop_tick(runtime, shop.id)  # a cart reminder waiting to go on LINE
    client = _client(runtime, shop)
    # Another shop's merchant cannot remove it
    other = make_shop(session, clock.now(), external_id="other-shop")
    refused = _client(runtime, other).post(f"/app/line/accounts/{account.id}/remove",
                                           data={"csrf": _csrf(runtime, other.id)}, headers=HTML)
    assert refused.status_code == 422 and "このショップのアカウントではありません" in refused.text
    assert client.post(f"/app/line/accounts/{account.id}/remove", data={"csrf": "forged"}, headers=HTML).status_code == 403
    # The shop's merchant removes it
    page = client.post(f"/app/line/accounts/{account.id}/remove", data={"csrf": _csrf(runtime, shop.id)}, headers=HTML,
                       follow_redirects=True)
    assert page.status_code == 200 and "アカウントを削除しました" in page.text
    session.expire_all()
    assert session.execute(select(LineAccount)).scalars().all() == []
    assert session.execute(select(LineLink)).scalars().all() == []
    waiting = session.get(Message, message_id)
    assert waiting is not None and (waiting.status, waiting.last_error) == (MessageStatus.cancelled, "LINE account removed")
    assert deliver(runtime, message_id)[0] == "skipped" and fake.pushes == []
    customer_page = html.unescape(client.get(f"/app/customers/{people[0].id}", headers=HTML).text)
    assert "LINE アカウントの連携が削除されたため取り消しました" in customer_page

"""The customer page: find a customer, then see why each message was or was not sent."""
from __future__ import annotations

import html
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from plugin.console.customer_page import customer_profile
from plugin.gates import decisions
from plugin.measurement.links import attribute_orders
from plugin.storage.consent import record_consent, suppress
from plugin.storage.models import Message, MessageEvent, MessageStatus, Trigger
from plugin.web.app import create_app
from plugin.web.deps import SESSION_COOKIE, session_cookie
from tests.factories import make_customer, make_order, make_product, make_shop

HTML = {"accept": "text/html"}


def _message(session, shop, customer, now, **fields):  # type: ignore[no-untyped-def]
    """One outbox row for this customer, as the engine writes it (treatment, nothing deferred)."""
    trigger = Trigger("cart", fields.pop("ref", None), fields.pop("step", None))
    values = {"shop_id": shop.id, "customer_id": customer.id, "scenario_key": "cart_recovery", "trigger_key": trigger.key,
              "trigger_kind": trigger.kind, "trigger_ref": trigger.ref, "trigger_step": trigger.step,
              "to_address": customer.email, "decision": f"{decisions.CAP_OK};{decisions.QUIET_OK};{decisions.TREATMENT}",
              "status": MessageStatus.pending, "scheduled_at": now, "created_at": now}
    message = Message(**{**values, **fields})
    session.add(message)
    session.commit()
    session.refresh(message)
    return message


@pytest.fixture
def merchant(runtime, session, clock):  # type: ignore[no-untyped-def]
    """A signed-in merchant of a shop with one customer, and a browser client."""
    shop = make_shop(session, clock.now())
    customer = make_customer(session, shop, clock.now(), name="山田 花子", email="hanako@example.jp", external_id="C-1001",
                             points_balance=800, last_order_at=clock.now() - timedelta(days=30),
                             points_expire_at=clock.now() + timedelta(days=335))
    client = TestClient(create_app(runtime), headers=HTML)
    client.cookies.set(SESSION_COOKIE, session_cookie(runtime, shop.id))
    return client, shop, customer


def test_search_finds_a_customer_by_email_name_or_id_and_says_what_to_type(merchant, session, clock) -> None:  # type: ignore[no-untyped-def]
    client, shop, customer = merchant
    make_customer(session, shop, clock.now(), name="佐藤 一郎", email="ichiro@example.jp")
    other_shop = make_shop(session, clock.now())
    make_customer(session, other_shop, clock.now(), name="山田 太郎", email="taro@other.example")
    # Given nothing typed, the page says what to type
    empty = client.get("/app/customers")
    assert empty.status_code == 200 and "メールアドレス、お名前" in empty.text
    # When the merchant searches by email, part of the name, Okaeri's id or the shop's number
    for query in ("hanako@example.jp", "HANAKO@example.jp", "花子", "山田", str(customer.id), "C-1001"):
        page = client.get("/app/customers", params={"q": query})
        # Then this shop's customer is found, linked to their page, and never another shop's
        assert f'href="/app/customers/{customer.id}"' in page.text, query
        assert "佐藤" not in page.text and "taro@other.example" not in page.text
    # And a search that matches nobody says so and what to try
    none = client.get("/app/customers", params={"q": "taro@other.example"})
    assert "一致するお客様は見つかりませんでした" in none.text and "/app/customers/" not in none.text.split("</form>")[1]


def test_search_results_come_a_page_at_a_time(merchant, session, clock) -> None:  # type: ignore[no-untyped-def]
    client, shop, _ = merchant
    for n in range(25):
        make_customer(session, shop, clock.now(), name=f"常連 {n}")
    first = client.get("/app/customers", params={"q": "常連"})
    assert first.text.count('href="/app/customers/') == 20 and 'rel="next"' in first.text
    second = client.get("/app/customers", params={"q": "常連", "page": 2})
    assert second.text.count('href="/app/customers/') == 5 and 'rel="next"' not in second.text
    assert client.get("/app/customers", params={"q": "x" * 101}).status_code == 422


def test_another_shops_customer_is_a_404_in_the_merchants_language(merchant, session, clock) -> None:  # type: ignore[no-untyped-def]
    client, _, _ = merchant
    other_shop = make_shop(session, clock.now())
    stranger = make_customer(session, other_shop, clock.now(), name="他店 次郎", email="jiro@other.example")
    # When the merchant opens another shop's customer by id
    page = client.get(f"/app/customers/{stranger.id}")
    # Then it is not found, in Japanese, and nothing of that customer shows
    assert page.status_code == 404 and "このお客様は見つかりません" in page.text
    assert "他店" not in page.text and "jiro@other.example" not in page.text
    english = client.get(f"/app/customers/{stranger.id}", params={"lang": "en"})
    assert english.status_code == 404 and "This customer cannot be found" in english.text
    # And an id no customer has, or no id at all, is a clear 4xx too
    assert client.get("/app/customers/999999999").status_code == 404
    assert client.get("/app/customers/abc").status_code == 422
    # and ids past what the database holds (INTEGER) are refused before they reach it (PostgreSQL: no 500)
    assert client.get(f"/app/customers/{2**31}").status_code == 422
    assert client.get("/app/customers/863216600982410240").status_code == 422
    assert client.get("/app/customers", params={"q": "863216600982410240"}).status_code == 200


def test_timeline_says_why_each_message_was_held_back_deferred_or_failed(merchant, session, clock) -> None:  # type: ignore[no-untyped-def]
    client, shop, customer = merchant
    now = clock.now()
    night = (now - timedelta(days=1)).replace(hour=13)  # last night, 22:00 in Tokyo: quiet hours until 08:00 (23:00 UTC)
    morning = night.replace(hour=23)
    _message(session, shop, customer, now - timedelta(days=4), ref=1, status=MessageStatus.control,
             decision=f"{decisions.CAP_OK};{decisions.QUIET_OK};{decisions.control(10)}")
    _message(session, shop, customer, night, ref=2, scheduled_at=morning,
             decision=f"{decisions.CAP_OK};{decisions.quiet_deferred(morning)};{decisions.TREATMENT}")
    _message(session, shop, customer, now - timedelta(days=3), ref=3, status=MessageStatus.failed,
             last_error="550 5.1.1 mailbox unavailable")
    # Given a win-back message the delivery's re-check held back: the customer had ordered meanwhile
    _message(session, shop, customer, now - timedelta(days=2), ref=4, scenario_key="winback",
             status=MessageStatus.cancelled, last_error="exit condition met before delivery")
    # When the merchant opens the customer's page
    page = client.get(f"/app/customers/{customer.id}").text
    # Then the held-back message says why, in Japanese
    assert "送信見送り" in page and "配信前に対象外になった(購入済みなど)ため送信を見送りました" in page
    # And the control, the deferral to 08:00 shop time and the failure with its error are there
    assert "対照群(送信しない)" in page and "ホールドアウト: 対照群（10%）のため送信しない" in page
    assert "延期中" in page and "深夜帯: 2026-11-20 08:00 まで延期" in page
    assert "失敗" in page and "550 5.1.1 mailbox unavailable" in page
    # newest first: the quiet-hours deferral (today), then win-back, the failure, the control
    assert page.index("深夜帯: 2026-11-20 08:00") < page.index("対象外になった") < page.index("mailbox unavailable") \
        < page.index("対照群（10%）")
    # And in English on request
    english = client.get(f"/app/customers/{customer.id}", params={"lang": "en"}).text
    assert "Held back" in english and "the customer no longer qualified before delivery" in english
    assert "quiet hours: deferred to 2026-11-20 08:00" in english and "Control (not sent)" in english


def test_timeline_shows_the_click_and_the_order_attributed_to_a_message(merchant, session, clock) -> None:  # type: ignore[no-untyped-def]
    client, shop, customer = merchant
    now = clock.now()
    sent = _message(session, shop, customer, now - timedelta(days=2), ref=5, status=MessageStatus.sent,
                    sent_at=now - timedelta(days=2))
    session.add(MessageEvent(shop_id=shop.id, message_id=sent.id, kind="open", occurred_at=now - timedelta(days=2, hours=-1)))
    session.add(MessageEvent(shop_id=shop.id, message_id=sent.id, kind="click", url="https://test.shop-pro.jp/",
                             occurred_at=now - timedelta(days=1, hours=23)))
    session.commit()
    product = make_product(session, shop, now, name="深煎りブレンド 200g")
    order = make_order(session, shop, customer, now - timedelta(days=1), items=[product])
    assert attribute_orders(session, shop.id, now) == 1
    page = client.get(f"/app/customers/{customer.id}").text
    # Then the sent message shows its open, its click and the order it brought, in shop time
    assert "送信済み" in page and "開封: 1回" in page and "クリック: 1回(最初 2026-11-18 13:00)" in page
    assert f"注文 {order.external_id} 1,200円(2026-11-19 12:00)" in page
    # And the order is in the customer's orders with its items, in the shop's time zone
    assert "2026-11-19 12:00" in page and "深煎りブレンド 200g" in page


def test_consent_per_channel_is_shown_with_its_record(merchant, session, clock) -> None:  # type: ignore[no-untyped-def]
    client, shop, customer = merchant
    record_consent(session, shop.id, "email", customer.email, True, "platform sync", clock.now() - timedelta(days=90))
    session.commit()
    before = client.get(f"/app/customers/{customer.id}").text
    assert "同意あり" in before and "platform sync" in before and "2026-08-22 12:00" in before
    # When the customer unsubscribes
    suppress(session, shop.id, "email", customer.email, "unsubscribed", clock.now(), source="one-click header")
    session.commit()
    after = client.get(f"/app/customers/{customer.id}").text
    # Then the page says no consent, since when and how, above the earlier opt-in
    assert "同意なし" in after and "配信停止リスト: 配信停止(2026-11-20 12:00)" in after
    assert after.index("one-click header") < after.index("platform sync") and "同意の取り消し" in after


def test_points_show_their_expiry_and_where_it_comes_from(merchant, session, clock) -> None:  # type: ignore[no-untyped-def]
    client, shop, customer = merchant
    # Given a ColorMe shop, whose data has no expiry: the shop's rule of months after the last order
    page = client.get(f"/app/customers/{customer.id}").text
    assert "800" in page and "2026-10-21" in page
    assert "ショップのルール: 最終購入日(2026-10-21)から12か月後" in page
    english = html.unescape(client.get(f"/app/customers/{customer.id}", params={"lang": "en"}).text)
    assert "The shop's rule: 12 months after the last order (2026-10-21)" in english
    # And the rule is the shop's own: 6 months says 6 months
    shop.points_expiry_months = 6
    session.add(shop)
    session.commit()
    assert "最終購入日(2026-10-21)から6か月後" in client.get(f"/app/customers/{customer.id}", params={"lang": "ja"}).text
    # And on a platform whose data carries the expiry, the page says it is the platform's
    profile = customer_profile(session, shop, customer.id, lang="ja", channels={}, expiry_from_platform=True,
                               platform_title="Shopify")
    assert profile is not None and profile.points_source == "Shopify のデータ(同期した有効期限)"


def test_timeline_is_newest_first_a_page_at_a_time_and_says_what_to_do_when_empty(merchant, session, clock) -> None:  # type: ignore[no-untyped-def]
    client, shop, customer = merchant
    empty = client.get(f"/app/customers/{customer.id}").text
    assert "まだメッセージが検討されていません" in empty and "まだ購入はありません" in empty
    for n in range(25):
        _message(session, shop, customer, clock.now() - timedelta(hours=n), ref=100 + n, status=MessageStatus.sent)
    first = client.get(f"/app/customers/{customer.id}").text
    assert first.count("data-message=") == 20 and 'rel="next"' in first
    second = client.get(f"/app/customers/{customer.id}", params={"page": 2}).text
    assert second.count("data-message=") == 5


def test_the_timeline_names_each_step_as_the_merchant_knows_it_not_by_its_code(merchant, session, clock) -> None:  # type: ignore[no-untyped-def]
    client, shop, customer = merchant
    now = clock.now()
    # Given a second cart reminder (written as "<revision>:2") and a post-purchase 30-day step
    second = _message(session, shop, customer, now, ref=41, step="17:2")
    follow = _message(session, shop, customer, now, scenario_key="post_purchase", ref=9, step="d30")
    # When the merchant opens the customer, in Japanese and in English
    page, english = client.get(f"/app/customers/{customer.id}"), client.get(f"/app/customers/{customer.id}?lang=en")
    # Then each step is named, never shown as its internal code
    assert "(ステップ 2通目のリマインド(24時間後))" in page.text and "(ステップ 30日後)" in page.text
    assert "17:2" not in page.text and "d30" not in page.text
    assert "(Step Day 30)" in english.text and second.id and follow.id

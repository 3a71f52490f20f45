"""The scenario page: per-step numbers, the queue and why each message waits, recent sends,
preview for a searched customer and a test send that comes back saying what it did."""
from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from plugin.delivery.batch import deliver
from plugin.engine.tick import run_shop_tick
from plugin.measurement.rollup import rebuild
from plugin.storage.models import Conversion, Customer, Message, MessageEvent, MessageStatus, Shop
from plugin.web.app import create_app
from plugin.web.deps import SESSION_COOKIE, session_cookie
from tests.factories import enable, idle_cart_shop, make_cart, make_customer, make_order, make_product, make_shop

BROWSER = {"accept": "text/html,application/xhtml+xml"}


def _client(runtime, shop: Shop) -> tuple[TestClient, str]:  # type: ignore[no-untyped-def]
    with runtime.sessions() as session:  # rows these tests wrote directly: the rollup recomputed, as migration 0022 does
        rebuild(session, session.get(Shop, shop.id))
        session.commit()
    client = TestClient(create_app(runtime))
    client.cookies.set(SESSION_COOKIE, session_cookie(runtime, shop.id or 0))
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/app/settings").text).group(1)  # type: ignore[union-attr]
    return client, csrf


def _message(session: Session, shop: Shop, customer: Customer, key: str, now: datetime, **fields) -> Message:  # type: ignore[no-untyped-def]
    values = {"shop_id": shop.id, "customer_id": customer.id, "scenario_key": key, "trigger_key": f"t{fields.get('trigger_step')}",
              "to_address": customer.email, "status": MessageStatus.sent, "scheduled_at": now, "sent_at": now, "created_at": now}
    message = Message(**{**values, **fields})
    session.add(message)
    session.commit()
    session.refresh(message)
    return message


def _cell(page: str, step: str, column: str) -> str:
    row = re.search(rf'<tr data-step="{step}">(.*?)</tr>', page, re.S).group(1)  # type: ignore[union-attr]
    return re.search(rf'class="n {column}">([^<]*)', row).group(1).strip()  # type: ignore[union-attr]


def _reasons(page: str) -> list[str]:
    return [r.strip() for r in re.findall(r'<td class="reason">(.*?)</td>', page, re.S)]


def test_each_post_purchase_step_has_its_own_numbers(runtime, session, clock) -> None:  # type: ignore[no-untyped-def]
    # Given two thanks mails (one opened and clicked, then bought from) and one day-30 mail
    now = clock.now()
    shop = make_shop(session, now)
    people = [make_customer(session, shop, now) for _ in range(3)]
    thanks = _message(session, shop, people[0], "post_purchase", now, trigger_kind="post", trigger_ref=1, trigger_step="thanks")
    _message(session, shop, people[1], "post_purchase", now, trigger_kind="post", trigger_ref=2, trigger_step="thanks")
    _message(session, shop, people[2], "post_purchase", now, trigger_kind="post", trigger_ref=3, trigger_step="d30")
    _message(session, shop, people[2], "post_purchase", now, trigger_kind="post", trigger_ref=4, trigger_step="d90",
             status=MessageStatus.pending, sent_at=None)  # not sent: not counted
    for kind in ("open", "open", "click"):
        session.add(MessageEvent(shop_id=shop.id, message_id=thanks.id, kind=kind, occurred_at=now))
    order = make_order(session, shop, people[0], now + timedelta(hours=2))
    session.add(Conversion(shop_id=shop.id, order_id=order.id, message_id=thanks.id, scenario_key="post_purchase",
                           revenue=4800, ordered_at=order.ordered_at))
    session.commit()
    client, _ = _client(runtime, shop)
    # When the merchant opens the post-purchase page
    page = client.get("/app/scenarios/post_purchase").text
    # Then each step has its own row: sent, opened, clicked, conversions, revenue
    assert [_cell(page, "thanks", c) for c in ("sent", "conversions", "revenue")] == ["2", "1", "4,800 JPY"]
    assert _cell(page, "thanks", "opened").startswith("1") and _cell(page, "thanks", "clicked").startswith("1")
    assert _cell(page, "d30", "sent") == "1" and _cell(page, "d30", "opened") .startswith("0")
    assert _cell(page, "d90", "sent") == "0" and _cell(page, "d365", "sent") == "0"
    assert "購入お礼" in page and "アンケート(7日後)" in page and "365日後" in page


def test_cart_reminders_and_point_notices_are_counted_per_step(runtime, session, clock) -> None:  # type: ignore[no-untyped-def]
    now = clock.now()
    shop = make_shop(session, now)
    person = make_customer(session, shop, now)
    _message(session, shop, person, "cart_recovery", now, trigger_kind="cart", trigger_ref=7, trigger_step="3")
    _message(session, shop, person, "cart_recovery", now, trigger_kind="cart", trigger_ref=7, trigger_step="3:2")
    _message(session, shop, person, "cart_recovery", now, trigger_kind="cart", trigger_ref=8, trigger_step="1:2")
    _message(session, shop, person, "point_expiry", now, trigger_kind="expiry", trigger_step="2026-12-01:7")
    client, _ = _client(runtime, shop)
    cart = client.get("/app/scenarios/cart_recovery").text
    assert (_cell(cart, "first", "sent"), _cell(cart, "second", "sent")) == ("1", "2")
    points = client.get("/app/scenarios/point_expiry?lang=en").text
    assert (_cell(points, "d30", "sent"), _cell(points, "d7", "sent")) == ("0", "1") and "7 days before expiry" in points


def test_a_message_written_at_night_says_it_waits_for_0800(runtime, session, clock) -> None:  # type: ignore[no-untyped-def]
    # Given carts left at 20:00 and the switch pressed at 22:00 shop time
    clock.advance(hours=10)  # 22:00 in Tokyo
    shop, people, _ = idle_cart_shop(session, clock.now(), customers=2)
    run_shop_tick(runtime, shop.id)
    client, _ = _client(runtime, shop)
    # When the merchant opens the cart-recovery page
    page = client.get("/app/scenarios/cart_recovery").text
    # Then both messages wait, and the page says until when and why
    assert "2 件が送信を待っています" in page
    assert _reasons(page) == ["配信しない時間帯（21時〜8時）のため、2026-11-21 08:00 まで待っています"] * 2
    english = client.get("/app/scenarios/cart_recovery?lang=en").text
    assert "Waiting until 2026-11-21 08:00: quiet hours (21:00–08:00)" in english


def test_a_capped_message_names_the_higher_priority_scenario_that_holds_the_cap(runtime, session, clock) -> None:  # type: ignore[no-untyped-def]
    # Given a customer who ordered three hours ago and left a cart two hours ago
    now = clock.now()
    shop = make_shop(session, now)
    product = make_product(session, shop, now)
    person = make_customer(session, shop, now)
    make_order(session, shop, person, now - timedelta(hours=3), [product])
    make_cart(session, shop, person, [product], now - timedelta(hours=2))
    enable(session, shop, "cart_recovery", now)
    enable(session, shop, "post_purchase", now)
    # When the tick writes both and the cart reminder (higher priority) is sent
    for message_id, _ in run_shop_tick(runtime, shop.id):
        deliver(runtime, message_id)
    client, _ = _client(runtime, shop)
    page = client.get("/app/scenarios/post_purchase").text
    # Then the thank-you mail waits a day, and the page says which scenario's mail holds the cap
    reason, = _reasons(page)
    assert reason == ("頻度上限のため、2026-11-21 12:00 まで待っています"
                      "（優先度の高い「カゴ落ちリマインド」を 2026-11-20 12:00 に送信済み）")
    assert "購入お礼" in page  # the step of the waiting message
    recent = client.get("/app/scenarios/cart_recovery").text
    assert person.email in recent.split('id="recent"')[1]


def test_a_message_deferred_after_a_failed_attempt_says_it_will_be_retried(runtime, session, clock) -> None:  # type: ignore[no-untyped-def]
    now = clock.now()
    shop = make_shop(session, now)
    person = make_customer(session, shop, now)
    _message(session, shop, person, "winback", now, status=MessageStatus.pending, sent_at=None, attempts=2,
             scheduled_at=now + timedelta(minutes=2), last_error="421 try later", decision="cap=ok;quiet=ok;holdout=treatment")
    client, _ = _client(runtime, shop)
    reason, = _reasons(client.get("/app/scenarios/winback").text)
    assert reason == "一時的な送信エラーのため、2026-11-20 12:02 に再送します（2回目の送信に失敗）"


def test_the_queue_is_paged(runtime, session, clock) -> None:  # type: ignore[no-untyped-def]
    now = clock.now()
    shop = make_shop(session, now)
    person = make_customer(session, shop, now)
    for n in range(25):
        _message(session, shop, person, "winback", now, trigger_step=str(n), status=MessageStatus.pending, sent_at=None,
                 scheduled_at=now + timedelta(minutes=n))
    client, _ = _client(runtime, shop)
    first, second = client.get("/app/scenarios/winback").text, client.get("/app/scenarios/winback?page=2").text
    assert len(_reasons(first)) == 20 and len(_reasons(second)) == 5 and "25 件が送信を待っています" in first
    assert "2 / 2 ページ" in second and client.get("/app/scenarios/winback?page=0").status_code == 422


def test_a_searched_customer_is_previewed(runtime, session, clock) -> None:  # type: ignore[no-untyped-def]
    # Given a shop with several customers
    shop, people, _ = idle_cart_shop(session, clock.now(), customers=3)
    people[1].name, people[1].email = "山田 花子", "hanako@example.jp"
    session.add(people[1])
    session.commit()
    client, _ = _client(runtime, shop)
    # When the merchant searches by part of the name, by the start of the email, or by id
    for query in ("花子", "hanako@", str(people[1].id)):
        found = client.get("/app/scenarios/cart_recovery", params={"q": query}).text
        assert f'data-customer="{people[1].id}"' in found and f'data-customer="{people[0].id}"' not in found
    assert "に一致するお客様はいません" in client.get("/app/scenarios/cart_recovery", params={"q": "100%_x"}).text
    # And picks her: the page names her and her subject, and the preview is her mail
    page = client.get(f"/app/scenarios/cart_recovery?customer={people[1].id}").text
    assert f"山田 花子 様(ID {people[1].id})へのメール" in page and "カートに商品が残っています" in page
    assert f'src="/app/scenarios/cart_recovery/preview?customer={people[1].id}"' in page
    mail = client.get(f"/app/scenarios/cart_recovery/preview?customer={people[1].id}")
    assert mail.headers["X-Preview-Customer"] == str(people[1].id) and "山田 花子 様" in mail.text


def test_another_shops_customer_is_no_one_here(runtime, session, clock) -> None:  # type: ignore[no-untyped-def]
    shop, _, _ = idle_cart_shop(session, clock.now(), customers=1)
    other = make_customer(session, make_shop(session, clock.now()), clock.now(), name="よその客")
    client, _ = _client(runtime, shop)
    page = client.get(f"/app/scenarios/cart_recovery?customer={other.id}").text
    assert f"このショップに ID {other.id} のお客様はいません" in page and "よその客" not in page
    assert client.get("/app/scenarios/cart_recovery", params={"q": "よその"}).text.count("data-customer=") == 0


def test_test_send_returns_to_the_page_with_a_confirmation(runtime, session, clock, catcher) -> None:  # type: ignore[no-untyped-def]
    shop, people, _ = idle_cart_shop(session, clock.now(), customers=2)
    client, csrf = _client(runtime, shop)
    # When the merchant test-sends the second customer's mail
    answer = client.post("/app/scenarios/cart_recovery/test-send", data={"csrf": csrf, "customer": str(people[1].id)},
                         headers=BROWSER, follow_redirects=False)
    # Then they come back to the scenario page (POST-redirect-GET), which says what was sent where
    assert answer.status_code == 303 and answer.headers["location"].startswith("/app/scenarios/cart_recovery?")
    page = client.get(answer.headers["location"])
    assert page.headers["content-type"].startswith("text/html")
    assert f"テストメールを {shop.owner_email} 宛てに送信しました({people[1].name} 様への内容" in page.text
    mail, = catcher.snapshot()
    assert mail["To"].addresses[0].addr_spec == shop.owner_email and mail["Subject"].startswith("[テスト送信]")
    assert people[1].name in mail.get_body(("plain",)).get_content()
    # And a forged confirmation says nothing
    assert "テストメールを" not in client.get("/app/scenarios/cart_recovery?sent=forged").text


def test_a_test_send_that_cannot_go_says_why_on_the_page(runtime, session, clock, catcher) -> None:  # type: ignore[no-untyped-def]
    shop, _, _ = idle_cart_shop(session, clock.now(), customers=1)
    shop.owner_email = ""
    session.add(shop)
    session.commit()
    client, csrf = _client(runtime, shop)
    page = client.post("/app/scenarios/cart_recovery/test-send", data={"csrf": csrf}, headers=BROWSER)
    assert page.status_code == 422 and page.headers["content-type"].startswith("text/html")
    assert "連絡先メールアドレスが登録されていないため" in page.text and 'id="test-error"' in page.text
    assert catcher.snapshot() == []


def test_settings_show_their_defaults_and_say_when_saved(runtime, session, clock) -> None:  # type: ignore[no-untyped-def]
    shop, _, _ = idle_cart_shop(session, clock.now(), customers=1)
    client, csrf = _client(runtime, shop)
    page = client.get("/app/scenarios/cart_recovery").text
    assert "既定: 60 分" in page and "既定: 10%" in page and "【{{ shop.name }}】カートに商品が残っています" in page
    saved = client.post("/app/scenarios/cart_recovery", data={"csrf": csrf, "enabled": "1", "delay_minutes": "90"},
                        follow_redirects=False)
    assert saved.status_code == 303
    assert "設定を保存しました" in client.get(saved.headers["location"]).text
    refused = client.post("/app/scenarios/cart_recovery", data={"csrf": csrf, "enabled": "1", "delay_minutes": "soon"},
                          headers=BROWSER)
    assert refused.status_code == 422 and refused.headers["content-type"].startswith("text/html")
    assert "配信までの待ち時間(分)は整数で入力してください" in refused.text and 'value="soon"' in refused.text


def test_the_settings_form_posted_from_the_scenario_page_goes_back_there(runtime, session, clock) -> None:  # type: ignore[no-untyped-def]
    shop, _, _ = idle_cart_shop(session, clock.now(), customers=1)
    client, csrf = _client(runtime, shop)
    back = client.post("/app/settings/scenarios/cart_recovery", data={"csrf": csrf, "enabled": "1"}, follow_redirects=False,
                       headers={"referer": "http://testserver/app/scenarios/cart_recovery?page=2"})
    assert back.headers["location"] == "/app/scenarios/cart_recovery?saved=1#settings"
    plain = client.post("/app/settings/scenarios/cart_recovery", data={"csrf": csrf, "enabled": "1"}, follow_redirects=False)
    assert plain.headers["location"] == "/app/settings#cart_recovery"
    settings = client.get("/app/settings").text
    assert 'href="/app/scenarios/cart_recovery"' in settings
    old = client.get("/app/settings/scenarios/cart_recovery/preview?customer=1", follow_redirects=False)
    assert old.status_code == 307 and old.headers["location"] == "/app/scenarios/cart_recovery/preview?customer=1"


@pytest.mark.parametrize("path", ["/app/scenarios/nope", "/app/scenarios/nope/preview"])
def test_an_unknown_scenario_is_a_404_page(runtime, session, clock, path: str) -> None:  # type: ignore[no-untyped-def]
    shop, _, _ = idle_cart_shop(session, clock.now(), customers=1)
    client, _ = _client(runtime, shop)
    answer = client.get(path, headers=BROWSER)
    assert answer.status_code == 404 and "「nope」というシナリオはありません" in answer.text

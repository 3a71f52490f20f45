"""The shop rules page: each rule the merchant sets there is saved, said back, and used."""
from __future__ import annotations

import re
from datetime import timedelta
from email.utils import parseaddr

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from plugin.console.scenarios import set_standard_scenarios
from plugin.delivery.batch import deliver_batch
from plugin.engine.tick import run_shop_tick
from plugin.storage.models import Customer, Message, ScenarioSetting, Shop
from plugin.storage.point_expiry import add_months
from plugin.web.app import create_app
from plugin.web.deps import SESSION_COOKIE, session_cookie
from tests.factories import enable, idle_cart_shop, make_customer, make_order, make_product, make_shop


@pytest.fixture
def merchant(runtime, session, clock):  # type: ignore[no-untyped-def]
    shop = make_shop(session, clock.now())
    client = TestClient(create_app(runtime))
    client.cookies.set(SESSION_COOKIE, session_cookie(runtime, shop.id))
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/app/rules").text).group(1)  # type: ignore[union-attr]
    return client, shop, csrf


def _messages(runtime, session, shop) -> list[Message]:  # type: ignore[no-untyped-def]
    run_shop_tick(runtime, shop.id)
    session.expire_all()
    return list(session.execute(select(Message).where(Message.shop_id == shop.id)).scalars())


def test_the_default_holdout_is_what_the_one_switch_writes(merchant, session, clock) -> None:  # type: ignore[no-untyped-def]
    client, shop, csrf = merchant
    # Given a merchant who wants a quarter of each audience kept back
    saved = client.post("/app/rules/sending", data={"csrf": csrf, "sender_name": "", "default_holdout_percent": "25"})
    assert saved.status_code == 200 and "差出人名と効果測定の初期値を保存しました" in saved.text
    # When they press the one switch
    session.expire_all()
    set_standard_scenarios(session, session.get(Shop, shop.id), True, clock.now())
    session.commit()
    # Then every preset it writes keeps 25 % back
    shares = set(session.execute(select(ScenarioSetting.holdout_percent).where(ScenarioSetting.shop_id == shop.id)).scalars())
    assert shares == {25}


def test_the_sender_name_is_the_display_name_of_the_from_header(runtime, session, clock, catcher) -> None:  # type: ignore[no-untyped-def]
    shop, _, _ = idle_cart_shop(session, clock.now(), customers=1)
    client = TestClient(create_app(runtime))
    client.cookies.set(SESSION_COOKIE, session_cookie(runtime, shop.id))
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/app/rules").text).group(1)  # type: ignore[union-attr]
    client.post("/app/rules/sending", data={"csrf": csrf, "sender_name": "  お茶の山田園\r\n ", "default_holdout_percent": "10"})
    deliver_batch(runtime, [m.id for m in _messages(runtime, session, shop)])
    mail, = catcher.snapshot()
    assert parseaddr(str(mail["From"]))[0] == "お茶の山田園"  # trimmed to one line


def test_a_grouping_rule_shows_the_products_it_matches(merchant, session, clock) -> None:  # type: ignore[no-untyped-def]
    client, shop, csrf = merchant
    now = clock.now()
    make_product(session, shop, now, code="TEA-SAMPLE", name="煎茶 お試し")
    make_product(session, shop, now, code="TEA-REGULAR", name="煎茶 100g")
    make_product(session, shop, now, code="COFFEE-1", name="深煎りブレンド")
    # Before saving: the preview lists what the pattern would take, and saves nothing
    draft = client.get("/app/rules/groups/preview", params={"codes": "TEA-*", "action": "merge", "group_name": "煎茶"})
    assert draft.status_code == 200 and "一致する商品: 2件" in draft.text and "まだ保存していません" in draft.text
    assert "深煎りブレンド" not in draft.text
    # Saved: the page says so, and the rule shows the products it decides and their new group
    saved = client.post("/app/rules/groups", data={"csrf": csrf, "codes": "TEA-*", "action": "merge", "group_name": "煎茶"})
    assert saved.status_code == 200 and "ルールを追加し" in saved.text
    assert "このルールで決まる商品: 2件" in saved.text and "煎茶 お試し" in saved.text and "深煎りブレンド" not in saved.text
    # A second rule does not count what the first one took
    client.post("/app/rules/groups", data={"csrf": csrf, "codes": "TEA-SAMPLE\nCOFFEE-1", "action": "merge", "group_name": "X"})
    assert "このルールで決まる商品: 1件" in client.get("/app/rules").text


def test_a_refused_rule_is_said_on_the_page_and_saves_nothing(merchant, session) -> None:  # type: ignore[no-untyped-def]
    client, shop, csrf = merchant
    refused = client.post("/app/rules/groups", data={"csrf": csrf, "codes": "", "action": "merge", "group_name": "煎茶"})
    assert refused.status_code == 422 and "商品コード(型番)を1つ以上入力してください" in refused.text
    english = client.post("/app/rules/points?lang=en", data={"csrf": csrf, "points_expiry_months": "0"})
    assert english.status_code == 422 and "must be between 1 and 120" in english.text and "範囲" not in english.text
    forged = client.post("/app/rules/sending", data={"csrf": "forged", "sender_name": "x", "default_holdout_percent": "10"})
    assert forged.status_code == 403
    session.expire_all()
    assert session.get(Shop, shop.id).sender_name == "" and session.get(Shop, shop.id).points_expiry_months == 12


def test_a_grouping_rule_changes_which_step_mail_a_customer_gets(runtime, session, clock, catcher) -> None:  # type: ignore[no-untyped-def]
    # Given a customer who bought the sample a month ago, then the regular item a week ago
    shop = make_shop(session, clock.now())
    now = clock.now()
    enable(session, shop, "post_purchase", now)
    sample = make_product(session, shop, now, code="TEA-SAMPLE", name="煎茶 お試し")
    regular = make_product(session, shop, now, code="TEA-REGULAR", name="煎茶 100g")
    buyer = make_customer(session, shop, now)
    first = make_order(session, shop, buyer, now - timedelta(days=30, hours=5), [sample])
    second = make_order(session, shop, buyer, now - timedelta(days=7, hours=1), [regular])
    # Without a rule they are two products: the regular item starts its own steps (a survey)
    assert {(m.trigger_ref, m.trigger_step) for m in _messages(runtime, session, shop)} == {
        (first.id, "d30"), (second.id, "survey")}
    session.query(Message).delete()
    session.commit()
    # When the merchant groups the codes on the rules page
    client = TestClient(create_app(runtime))
    client.cookies.set(SESSION_COOKIE, session_cookie(runtime, shop.id))
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/app/rules").text).group(1)  # type: ignore[union-attr]
    client.post("/app/rules/groups", data={"csrf": csrf, "codes": "TEA-*", "action": "merge", "group_name": "煎茶"})
    # Then the second purchase continues the sample's sequence: only its 30-day step, no new survey
    messages = _messages(runtime, session, shop)
    assert {(m.trigger_ref, m.trigger_step) for m in messages} == {(first.id, "d30")}
    deliver_batch(runtime, [m.id for m in messages])
    mail, = catcher.snapshot()
    body = mail.get_body(("plain",)).get_content()
    assert "煎茶 100g" in body and "煎茶 お試し" not in body  # the product they bought last in the group


def test_the_expiry_months_are_used_by_the_point_expiry_preset(merchant, runtime, session, clock, catcher) -> None:  # type: ignore[no-untyped-def]
    client, shop, csrf = merchant
    now = clock.now()
    enable(session, shop, "point_expiry", now)
    # Given a ColorMe customer whose last order was 5 months and 20 days ago (12 months: not expiring soon)
    last = now - timedelta(days=172)
    holder = make_customer(session, shop, now, points_balance=800, last_order_at=last,
                           points_expire_at=add_months(last, 12))
    make_order(session, shop, holder, last)
    assert _messages(runtime, session, shop) == []
    page = client.get("/app/rules")
    assert "ポイント有効期限のお知らせ" in page.text and 'name="points_expiry_months" min="1" max="120" value="12"' in page.text
    # When the merchant says points expire 6 months after the last order
    saved = client.post("/app/rules/points", data={"csrf": csrf, "points_expiry_months": "6"})
    assert saved.status_code == 200 and "全顧客の有効期限を計算し直しました" in saved.text
    # Then the customer's points expire 6 months after that order, and the notice goes out
    session.expire_all()
    assert session.get(Customer, holder.id).points_expire_at == add_months(last, 6)
    messages = _messages(runtime, session, shop)
    assert [m.customer_id for m in messages] == [holder.id]
    deliver_batch(runtime, [m.id for m in messages])
    mail, = catcher.snapshot()
    assert f"{add_months(last, 6).astimezone(__import__('zoneinfo').ZoneInfo('Asia/Tokyo')):%Y-%m-%d}" in \
        mail.get_body(("plain",)).get_content()


def test_months_after_the_last_order_end_on_the_last_day_of_a_short_month(session, clock) -> None:  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    from plugin.storage.point_expiry import refresh_point_expiry

    last = datetime(2026, 8, 31, 3, 4, 5, tzinfo=UTC)
    assert add_months(last, 6) == datetime(2027, 2, 28, 3, 4, 5, tzinfo=UTC)
    shop = make_shop(session, clock.now())
    customers = [make_customer(session, shop, clock.now(), last_order_at=at)
                 for at in (last, datetime(2026, 1, 15, 23, 59, 59, tzinfo=UTC))]
    refresh_point_expiry(session, shop.id, 6)  # in SQL, the same dates as in Python
    session.commit()
    session.expire_all()
    assert [session.get(Customer, c.id).points_expire_at for c in customers] == [
        add_months(c.last_order_at, 6) for c in customers]

"""A shop's own quiet hours and frequency cap, set on the settings page, hold at the tick and at delivery."""
from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from plugin.delivery.batch import deliver
from plugin.engine.tick import run_shop_tick
from plugin.gates.decisions import explain
from plugin.storage.models import Message, Shop
from plugin.web.app import create_app
from plugin.web.deps import SESSION_COOKIE, session_cookie
from tests.factories import enable, idle_cart_shop


def _with_points(session, people):  # type: ignore[no-untyped-def]
    for person in people:
        person.points_balance = 500
        session.add(person)
    session.commit()


def test_a_shop_that_moves_its_quiet_hours_gets_mail_at_its_own_morning(runtime, session, clock) -> None:  # type: ignore[no-untyped-def]
    # Given a shop whose quiet hours are 11:00-13:00, and it is 12:00 in Tokyo
    shop, _, _ = idle_cart_shop(session, clock.now(), customers=1)
    shop.quiet_start_hour, shop.quiet_end_hour = 11, 13
    session.add(shop)
    session.commit()
    # When the tick writes the reminder
    assert run_shop_tick(runtime, shop.id) == []
    # Then it waits for 13:00 shop time, and says so
    message = session.execute(select(Message)).scalar_one()
    assert message.scheduled_at.replace(tzinfo=UTC) == datetime(2026, 11, 20, 4, 0, tzinfo=UTC)
    assert "深夜帯: 2026-11-20 13:00 まで延期" in explain(message.decision)


def test_a_shop_without_quiet_hours_sends_at_night(runtime, session, clock, catcher) -> None:  # type: ignore[no-untyped-def]
    clock.at = datetime(2026, 11, 20, 14, 0, tzinfo=UTC)  # 23:00 in Tokyo
    shop, _, _ = idle_cart_shop(session, clock.now(), customers=1)
    shop.quiet_start_hour = shop.quiet_end_hour = 0
    session.add(shop)
    session.commit()
    (message_id, _), = run_shop_tick(runtime, shop.id)
    assert deliver(runtime, message_id)[0] == "sent"


def test_quiet_hours_set_after_the_tick_still_hold_at_delivery(runtime, session, clock, catcher) -> None:  # type: ignore[no-untyped-def]
    shop, _, _ = idle_cart_shop(session, clock.now(), customers=1)
    (message_id, _), = run_shop_tick(runtime, shop.id)
    shop.quiet_start_hour, shop.quiet_end_hour = 12, 14  # the merchant changes the rule before the worker runs
    session.add(shop)
    session.commit()
    outcome, at = deliver(runtime, message_id)
    assert (outcome, at) == ("deferred", datetime(2026, 11, 20, 5, 0, tzinfo=UTC))  # 14:00 in Tokyo
    assert catcher.snapshot() == []


def test_a_cap_of_two_per_day_lets_a_second_scenario_through_and_defers_the_third(runtime, session, clock, catcher) -> None:  # type: ignore[no-untyped-def]
    # Given a customer with an idle cart, points (statement) and a lapsed order history (win-back)
    shop, people, _ = idle_cart_shop(session, clock.now(), customers=1)
    shop.cap_count = 2
    session.add(shop)
    _with_points(session, people)
    enable(session, shop, "point_statement", clock.now())
    # When the tick writes both
    handed = run_shop_tick(runtime, shop.id)
    # Then both go now: the shop allows two messages a day
    assert len(handed) == 2
    assert [deliver(runtime, mid)[0] for mid, _ in handed] == ["sent", "sent"]
    assert len(catcher.snapshot()) == 2


def test_a_cap_of_one_per_48_hours_defers_by_two_days_and_says_so(runtime, session, clock) -> None:  # type: ignore[no-untyped-def]
    shop, people, _ = idle_cart_shop(session, clock.now(), customers=1)
    shop.cap_window_hours = 48
    session.add(shop)
    _with_points(session, people)
    enable(session, shop, "point_statement", clock.now())
    run_shop_tick(runtime, shop.id)
    first, second = session.execute(select(Message).order_by(Message.scheduled_at)).scalars().all()
    assert second.scheduled_at - first.scheduled_at >= timedelta(hours=48)
    assert "頻度上限: 48時間以内に1通の上限に達したため延期（深夜帯は配信時に確認）" in explain(second.decision)
    assert "frequency cap: 1 per 48 h reached, deferred (quiet hours checked at delivery)" in explain(second.decision, "en")


def test_at_delivery_a_cap_of_one_holds_against_a_mail_sent_an_hour_ago(runtime, session, clock, catcher) -> None:  # type: ignore[no-untyped-def]
    shop, people, _ = idle_cart_shop(session, clock.now(), customers=1)
    _with_points(session, people)
    (cart_id, _), = run_shop_tick(runtime, shop.id)
    assert deliver(runtime, cart_id)[0] == "sent"
    # a statement written by hand as if an older tick had not seen the cart
    enable(session, shop, "point_statement", clock.now())
    statement = Message(shop_id=shop.id, customer_id=people[0].id, scenario_key="point_statement", trigger_key="x",
                        to_address=people[0].email, scheduled_at=clock.now(), created_at=clock.now(),
                        decision="cap=ok;quiet=ok;holdout=treatment")
    session.add(statement)
    session.commit()
    clock.advance(hours=1)
    outcome, at = deliver(runtime, statement.id)
    assert outcome == "deferred" and at == datetime(2026, 11, 21, 3, 0, tzinfo=UTC)
    assert len(catcher.snapshot()) == 1


@pytest.fixture
def merchant(runtime, session, clock):  # type: ignore[no-untyped-def]
    shop, _, _ = idle_cart_shop(session, clock.now(), customers=1)
    client = TestClient(create_app(runtime))
    client.cookies.set(SESSION_COOKIE, session_cookie(runtime, shop.id))
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/app/settings").text).group(1)  # type: ignore[union-attr]
    return client, shop, csrf


def test_the_merchant_sets_quiet_hours_and_the_cap_on_the_rules_page(merchant, session) -> None:  # type: ignore[no-untyped-def]
    client, shop, csrf = merchant
    page = client.get("/app/rules")
    assert "配信しない時間帯" in page.text and 'name="quiet_start_hour" min="0" max="23" value="21"' in page.text
    saved = client.post("/app/settings/rules", data={"csrf": csrf, "quiet_start_hour": "22", "quiet_end_hour": "7",
                                                     "cap_window_hours": "48", "cap_count": "2"})
    assert saved.status_code == 200 and saved.url.path == "/app/rules"
    assert "配信しない時間帯と頻度上限を保存しました" in saved.text  # the page says what the form did
    session.expire_all()
    stored = session.get(Shop, shop.id)
    assert (stored.quiet_start_hour, stored.quiet_end_hour, stored.cap_window_hours, stored.cap_count) == (22, 7, 48, 2)


@pytest.mark.parametrize("field, value", [("quiet_start_hour", "24"), ("cap_count", "0"), ("cap_window_hours", "x")])
def test_a_rule_out_of_range_is_refused_with_a_reason_and_changes_nothing(merchant, session, field, value) -> None:  # type: ignore[no-untyped-def]
    client, shop, csrf = merchant
    form = {"csrf": csrf, "quiet_start_hour": "21", "quiet_end_hour": "8", "cap_window_hours": "24", "cap_count": "1"}
    refused = client.post("/app/settings/rules", data={**form, field: value})
    assert refused.status_code == 422 and refused.headers["content-type"].startswith("text/html")
    assert "範囲" in refused.text or "整数" in refused.text  # said on the rules page, in Japanese
    assert "must be" not in refused.text
    session.expire_all()
    assert session.get(Shop, shop.id).cap_count == 1


def test_a_forged_rules_form_without_the_csrf_token_is_refused(merchant, session) -> None:  # type: ignore[no-untyped-def]
    client, shop, _ = merchant
    refused = client.post("/app/settings/rules", data={"csrf": "forged", "quiet_start_hour": "0", "quiet_end_hour": "0",
                                                       "cap_window_hours": "1", "cap_count": "10"})
    assert refused.status_code == 403
    session.expire_all()
    assert session.get(Shop, shop.id).cap_count == 1


def test_the_shop_rules_migration_goes_down_and_up_keeping_every_shop(database_url, clock) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import text
    from sqlmodel import Session

    from plugin.storage.db import make_engine, migrate
    from tests.factories import make_shop
    from tests.test_trigger_columns import _downgrade

    # Given a shop with rules of its own, on the newest schema
    engine = make_engine(database_url)
    migrate(engine)
    with Session(engine) as session:
        shop_id = make_shop(session, clock.now(), quiet_start_hour=22, cap_count=3).id
    # When the schema goes back before the rules and forward again
    _downgrade(engine, "0014")
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM shops")).scalar() == 1
    migrate(engine)
    # Then the shop is there with today's defaults (the rules did not exist before)
    with engine.connect() as connection:
        rules = connection.execute(text("SELECT quiet_start_hour, quiet_end_hour, cap_window_hours, cap_count "
                                        f"FROM shops WHERE id = {shop_id}")).one()
    engine.dispose()
    assert tuple(rules) == (21, 8, 24, 1)


def test_a_refused_rule_is_said_in_english_on_the_english_page(merchant) -> None:  # type: ignore[no-untyped-def]
    client, _, csrf = merchant
    refused = client.post("/app/settings/rules?lang=en", data={"csrf": csrf, "quiet_start_hour": "21", "quiet_end_hour": "8",
                                                              "cap_window_hours": "24", "cap_count": "99"})
    assert refused.status_code == 422
    assert "messages per window must be between 1 and 10" in refused.text and "範囲" not in refused.text

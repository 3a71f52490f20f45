"""The merchant's dashboard: a period's figures per scenario and in total, held-back reasons, the
holdout lift (or that there is not enough data yet), days in the shop's zone, and the CSV."""
from __future__ import annotations

import itertools
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from plugin.measurement.periods import local_period
from plugin.measurement.reports import dashboard, lift
from plugin.measurement.rollup import rebuild
from plugin.storage.models import Conversion, Customer, Message, MessageEvent, MessageStatus, Order, Shop
from plugin.web.app import create_app
from plugin.web.deps import SESSION_COOKIE, session_cookie
from tests.factories import make_customer, make_order, make_shop

NOON_TOKYO = datetime(2026, 3, 10, 3, 0, tzinfo=UTC)  # 12:00 in Tokyo, Tuesday 10 March
_triggers = itertools.count(1)


def _roll(session: Any, shop_id: int) -> None:
    """These tests write rows directly, not through the tick, delivery and tracking that keep the
    rollup: recompute it from the rows, as migration 0022 does (tests/test_rollup.py checks the
    kept counters against this recomputation)."""
    rebuild(session, session.get(Shop, shop_id))
    session.commit()


def _message(session: Any, shop: Any, customer: Any, key: str, status: MessageStatus, at: datetime, **fields: Any) -> Message:
    """One outbox row written at `at` (and sent then, if sent)."""
    row = Message(shop_id=shop.id, customer_id=customer.id, scenario_key=key, trigger_key=f"t:{next(_triggers)}",
                  to_address=customer.email, status=status, scheduled_at=at, created_at=at,
                  sent_at=at if status == MessageStatus.sent else None, **fields)
    session.add(row)
    session.commit()
    session.refresh(row)
    _roll(session, shop.id)
    return row


def _event(session: Any, message: Message, kind: str, at: datetime) -> None:
    session.add(MessageEvent(shop_id=message.shop_id, message_id=message.id, kind=kind, occurred_at=at))
    session.commit()
    _roll(session, message.shop_id)


def _conversion(session: Any, shop: Any, customer: Any, message: Message, revenue: int, at: datetime) -> None:
    order = make_order(session, shop, customer, at)
    session.add(Conversion(shop_id=shop.id, order_id=order.id, message_id=message.id, scenario_key=message.scenario_key,
                           revenue=revenue, ordered_at=at))
    session.commit()
    _roll(session, shop.id)


def _client(runtime: Any, shop: Any) -> TestClient:
    client = TestClient(create_app(runtime))
    client.cookies.set(SESSION_COOKIE, session_cookie(runtime, shop.id))
    return client


def _cell(page: str, scenario: str, figure: str) -> str:
    row = re.search(rf'<tr[^>]*data-scenario="{scenario}"[^>]*>(.*?)</tr>', page, re.S)
    assert row is not None, scenario
    cell = re.search(rf'data-figure="{figure}">(.*?)</td>', row.group(1), re.S)
    assert cell is not None, figure
    return re.sub(r"<[^>]+>", " ", cell.group(1)).split()[0]


@pytest.fixture
def shop(session, clock):  # type: ignore[no-untyped-def]
    clock.at = NOON_TOKYO
    return make_shop(session, NOON_TOKYO)


def test_figures_per_scenario_and_in_total(runtime, session, shop) -> None:  # type: ignore[no-untyped-def]
    # Given three cart reminders (one opened, one clicked and bought for 5,000 yen) and two win-back mails
    day = NOON_TOKYO - timedelta(days=2)
    buyer, other = make_customer(session, shop, day), make_customer(session, shop, day)
    opened = _message(session, shop, other, "cart_recovery", MessageStatus.sent, day)
    clicked = _message(session, shop, buyer, "cart_recovery", MessageStatus.sent, day)
    _message(session, shop, other, "cart_recovery", MessageStatus.sent, day + timedelta(hours=1))
    _event(session, opened, "open", day + timedelta(hours=2))
    _event(session, opened, "open", day + timedelta(hours=3))  # read twice: one opened message
    _event(session, clicked, "click", day + timedelta(hours=2))  # a click without a loaded pixel still opened it
    _conversion(session, shop, buyer, clicked, 5000, day + timedelta(days=1))
    winback = _message(session, shop, buyer, "winback", MessageStatus.sent, day)
    _message(session, shop, other, "winback", MessageStatus.sent, day)
    _event(session, winback, "open", day + timedelta(days=3))  # after the period's last send: still its message's
    # When the merchant opens the dashboard
    page = _client(runtime, shop).get("/app/")
    # Then each scenario and the total show what was sent, opened, clicked and earned
    assert page.status_code == 200
    figures = {f: _cell(page.text, "cart_recovery", f) for f in ("sent", "opened", "clicked", "conversions", "revenue")}
    assert figures == {"sent": "3", "opened": "2", "clicked": "1", "conversions": "1", "revenue": "5,000円"}
    assert (_cell(page.text, "winback", "sent"), _cell(page.text, "winback", "opened")) == ("2", "1")
    assert [_cell(page.text, "total", f) for f in ("sent", "opened", "clicked", "revenue")] == ["5", "3", "1", "5,000円"]
    assert "効果レポート(JSON)" not in page.text


def test_held_back_messages_are_counted_by_reason_in_the_merchants_language(runtime, session, shop) -> None:  # type: ignore[no-untyped-def]
    # Given messages the gates held back for different reasons
    day = NOON_TOKYO - timedelta(days=1)
    who = make_customer(session, shop, day)
    held = [(MessageStatus.control, {"decision": "cap=ok;quiet=ok;holdout=control@10"}),
            (MessageStatus.control, {"decision": "cap=ok;quiet=ok;holdout=control@10"}),
            (MessageStatus.cancelled, {"last_error": "suppressed: unsubscribed"}),
            (MessageStatus.pending, {"decision": "cap=deferred;holdout=treatment"}),
            (MessageStatus.pending, {"decision": "cap=ok;quiet=deferred@2026-03-09T23:00:00+00:00;holdout=treatment"}),
            (MessageStatus.cancelled, {"last_error": "stock: no promoted item is in stock any more"}),
            (MessageStatus.failed, {"last_error": "550 no such user"})]
    for status, fields in held:
        _message(session, shop, who, "cart_recovery", status, day, **fields)
    _message(session, shop, who, "cart_recovery", MessageStatus.sent, day, decision="cap=deferred;holdout=treatment")
    # When the dashboard adds them up
    board = dashboard(session, shop, local_period(date(2026, 3, 4), date(2026, 3, 10), "Asia/Tokyo"))
    cart = next(s for s in board.scenarios if s.key == "cart_recovery")
    # Then each reason has its count (a row deferred and later sent is sent, not held back)
    assert cart.figures.held_back == {"control": 2, "suppressed": 1, "capped": 1, "quiet_hours": 1, "out_of_stock": 1,
                                      "failed": 1}
    assert cart.figures.sent == 1 and board.total.held_back_total == 7
    # and the page names them in Japanese
    page = _client(runtime, shop).get("/app/").text
    assert "深夜帯のため朝まで待機" in page and "頻度上限で延期中" in page and "比較用グループ" in page
    assert re.search(r'data-reason="control">2<', page)


def test_lift_says_not_enough_data_while_the_control_group_is_small(runtime, session, shop) -> None:  # type: ignore[no-untyped-def]
    # Given 30 sent reminders and 3 held out, nobody bought
    day = NOON_TOKYO - timedelta(days=3)
    who = make_customer(session, shop, day)
    for status in [MessageStatus.sent] * 30 + [MessageStatus.control] * 3:
        _message(session, shop, who, "cart_recovery", status, day)
    client = _client(runtime, shop)
    # Then the lift is not shown as a figure (no "0.0 to 0.0"), in Japanese and in English
    assert _cell(client.get("/app/").text, "cart_recovery", "lift") == "まだ十分なデータがありません".split()[0]
    assert "Not enough data yet" in client.get("/app/?lang=en").text
    # and the interval, though not shown, is honest about the uncertainty
    interval = lift(30, 0, 3, 0)
    assert interval["ci_low"] is not None and interval["ci_high"] is not None
    assert interval["ci_high"] - interval["ci_low"] > 0.3


def _bulk_customers(session: Any, shop: Any, n: int, at: datetime) -> list[Customer]:
    people = [Customer(shop_id=shop.id, external_id=f"bulk-{next(_triggers)}", email=f"bulk{next(_triggers)}@example.jp",
                       name="顧客", email_consent=True, created_at=at, updated_at=at) for _ in range(n)]
    session.add_all(people)
    session.commit()
    return people


def test_lift_and_its_interval_from_orders_within_the_window(runtime, session, shop) -> None:  # type: ignore[no-untyped-def]
    # Given 200 sent and 200 held-out customers; 60 of the sent bought within 5 days, 20 of the control
    day = NOON_TOKYO - timedelta(days=8)
    treated, control = _bulk_customers(session, shop, 200, day), _bulk_customers(session, shop, 200, day)
    session.add_all([Message(shop_id=shop.id, customer_id=c.id, scenario_key="winback", trigger_key="t", to_address=c.email,
                             status=status, scheduled_at=day, created_at=day,
                             sent_at=day if status == MessageStatus.sent else None)
                     for people, status in ((treated, MessageStatus.sent), (control, MessageStatus.control)) for c in people])
    _roll(session, shop.id)
    orders = [(c, day + timedelta(days=4)) for c in treated[:60]] + [(c, day + timedelta(days=2)) for c in control[:20]]
    orders += [(c, day + timedelta(days=6)) for c in treated[60:100]]  # after the window: not the message's doing
    orders += [(c, day - timedelta(hours=1)) for c in control[20:50]]  # before it: neither
    session.add_all([Order(shop_id=shop.id, external_id=f"o-{next(_triggers)}", customer_id=c.id, ordered_at=at,
                           updated_at=at, total=3000) for c, at in orders])
    session.commit()
    # When the dashboard measures the last 30 days
    board = dashboard(session, shop, local_period(date(2026, 2, 9), date(2026, 3, 10), "Asia/Tokyo"))
    winback = next(s for s in board.scenarios if s.key == "winback").lift
    # Then the lift is 30 % − 10 % = 20 points, with an interval around it
    assert (winback.treated, winback.treated_converted, winback.control, winback.control_converted) == (200, 60, 200, 20)
    assert winback.enough and winback.value == pytest.approx(0.20)
    assert winback.interval is not None and winback.interval[0] < 0.20 < winback.interval[1]
    page = _client(runtime, shop).get("/app/").text
    assert _cell(page, "winback", "lift") == "+20.0"
    assert "ポイント" in page


def test_the_period_follows_the_shops_days_not_utc(runtime, session, shop) -> None:  # type: ignore[no-untyped-def]
    # Given one mail sent at 00:00 Tokyo on 4 March (15:00 UTC on the 3rd) and one at 23:59 Tokyo on the 3rd
    who = make_customer(session, shop, NOON_TOKYO)
    _message(session, shop, who, "winback", MessageStatus.sent, datetime(2026, 3, 3, 15, 0, tzinfo=UTC))
    _message(session, shop, who, "ranking", MessageStatus.sent, datetime(2026, 3, 3, 14, 59, tzinfo=UTC))
    client = _client(runtime, shop)
    # Then the last 7 days (4–10 March in Tokyo) hold only the first, on the 4th
    page = client.get("/app/?period=7").text
    assert (_cell(page, "winback", "sent"), _cell(page, "ranking", "sent")) == ("1", "0")
    assert re.search(r"<tr><td>2026-03-04</td><td class=\"num\">1</td>", page)
    # and a custom day, 3 March, holds only the second
    page = client.get("/app/?period=custom&from=2026-03-03&to=2026-03-03").text
    assert (_cell(page, "winback", "sent"), _cell(page, "ranking", "sent")) == ("0", "1")
    # and weekly charts gather the days into ISO weeks starting on Monday
    page = client.get("/app/?period=custom&from=2026-03-01&to=2026-03-10&by=week").text
    assert re.search(r"<tr><td>2026-03-02</td><td class=\"num\">2</td>", page)


def test_a_day_across_a_daylight_saving_change_is_the_shops_day(session, clock) -> None:  # type: ignore[no-untyped-def]
    # Given a New York shop and a mail at 00:30 on 9 March, the day after clocks went forward (04:30 UTC)
    shop = make_shop(session, NOON_TOKYO, timezone="America/New_York")
    who = make_customer(session, shop, NOON_TOKYO)
    _message(session, shop, who, "winback", MessageStatus.sent, datetime(2026, 3, 9, 4, 30, tzinfo=UTC))
    _message(session, shop, who, "winback", MessageStatus.sent, datetime(2026, 3, 2, 5, 30, tzinfo=UTC))  # 00:30 EST
    # When the dashboard groups by day
    board = dashboard(session, shop, local_period(date(2026, 3, 1), date(2026, 3, 10), "America/New_York"))
    # Then each mail is on its local day
    assert {day for day, f in board.series() if f.sent} == {date(2026, 3, 9), date(2026, 3, 2)}


def test_bad_periods_are_refused_in_japanese(runtime, session, shop) -> None:  # type: ignore[no-untyped-def]
    client = _client(runtime, shop)
    backwards = client.get("/app/?period=custom&from=2026-03-10&to=2026-03-01")
    assert backwards.status_code == 422 and "開始日は終了日より前" in backwards.text
    assert client.get("/app/?period=custom&from=yesterday&to=2026-03-01").status_code == 422
    assert client.get("/app/?period=5").status_code == 422
    assert client.get("/app/dashboard.csv?period=custom&from=2020-01-01&to=2026-03-01").status_code == 422
    assert TestClient(create_app(runtime)).get("/app/").status_code == 401  # no merchant session


def test_csv_opens_in_excel_with_the_same_figures(runtime, session, shop) -> None:  # type: ignore[no-untyped-def]
    # Given two cart reminders on 9 March (one bought for 4,200 yen) and one held out
    day = NOON_TOKYO - timedelta(days=1)
    who = make_customer(session, shop, day)
    bought = _message(session, shop, who, "cart_recovery", MessageStatus.sent, day)
    _message(session, shop, who, "cart_recovery", MessageStatus.sent, day)
    _message(session, shop, who, "cart_recovery", MessageStatus.control, day)
    _conversion(session, shop, who, bought, 4200, day + timedelta(hours=5))
    # When the merchant downloads the CSV
    answer = _client(runtime, shop).get("/app/dashboard.csv?period=7")
    # Then it is UTF-8 with a BOM, a file to save, with Japanese headings
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    assert answer.content.startswith(b"\xef\xbb\xbf")
    assert 'filename="okaeri-dashboard-2026-03-04-2026-03-10.csv"' in answer.headers["content-disposition"]
    lines = answer.content.decode("utf-8-sig").splitlines()
    assert lines[0].startswith("日付,key,シナリオ,送信,開封,クリック,コンバージョン,売上(貢献),保留・除外,比較用グループ")
    assert any(line.startswith("2026-03-09,cart_recovery,カゴ落ちリマインド,2,0,0,1,4200,1,1,") for line in lines)
    total = lines[-1].split(",")
    assert total[:9] == ["合計", "", "合計", "2", "0", "0", "1", "4200", "1"] and total[-1] == "まだ十分なデータがありません"


def test_after_login_the_merchant_lands_on_the_dashboard_with_its_chart_library(runtime, session, shop, catcher) -> None:  # type: ignore[no-untyped-def]
    from plugin.demo.routes import demo_router

    app = create_app(runtime)
    app.include_router(demo_router(catcher))
    client = TestClient(app)
    login = client.get("/demo/login", follow_redirects=False)
    assert login.status_code == 303 and login.headers["location"] == "/app/"
    page = client.get("/app/").text
    # The charts are drawn by the package's own copy of Chart.js: no CDN
    scripts = re.findall(r'<script[^>]*src="([^"]+)"', page)
    assert "/static/vendor/chart.umd.min.js" in scripts and all(s.startswith("/static/") for s in scripts)
    library = client.get("/static/vendor/chart.umd.min.js")
    assert library.status_code == 200 and "Chart.js v4" in library.text[:200]
    # and every console page is one click away
    assert all(f'href="{href}"' in page for href in ("/app/", "/app/settings", "/app/customers", "/app/rules", "/app/surveys"))
    assert 'aria-current="page">ダッシュボード' in page


def test_the_demo_outbox_has_the_consoles_look_and_the_shops_clock(runtime, session, shop, catcher) -> None:  # type: ignore[no-untyped-def]
    import smtplib
    from email.mime.text import MIMEText

    from plugin.demo.routes import demo_router

    # Given a mail the catcher received at 03:00 UTC (12:00 in Tokyo), carrying an open pixel
    mail = MIMEText('<p>本文</p><img src="http://okaeri.test/t/o/7/abc.gif" alt="">', "html", "utf-8")
    mail["Subject"], mail["From"], mail["To"] = "お知らせ", "a@example.jp", "b@example.jp"
    mail["Date"] = "Tue, 10 Mar 2026 03:00:00 +0000"
    with smtplib.SMTP("127.0.0.1", catcher.port) as smtp:
        smtp.sendmail("a@example.jp", ["b@example.jp"], mail.as_bytes())
    app = create_app(runtime)
    app.include_router(demo_router(catcher))
    client = TestClient(app)
    # When the merchant reads the demo outbox and the mail
    listing, shown = client.get("/demo/outbox").text, client.get("/demo/outbox/0").text
    # Then both pages use the console's stylesheet and show the shop's time, and reading is no open
    assert all('href="/static/console.css"' in page and "2026-03-10 12:00" in page for page in (listing, shown))
    assert "/t/o/" not in shown and "本文" in shown

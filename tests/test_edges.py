"""Small edges a careless form or a new user could reach (issue 12): each refused with a reason,
nothing changed that should not be. Hostile input lives in tests/test_hostile_input.py."""
from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from plugin.storage.models import Message, ScenarioSetting
from plugin.web.app import create_app
from plugin.web.deps import SESSION_COOKIE, session_cookie
from tests.factories import idle_cart_shop


@pytest.fixture
def merchant(runtime, session, clock):  # type: ignore[no-untyped-def]
    shop, people, _ = idle_cart_shop(session, clock.now(), customers=2)
    client = TestClient(create_app(runtime))
    client.cookies.set(SESSION_COOKIE, session_cookie(runtime, shop.id or 0))
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/app/settings").text).group(1)  # type: ignore[union-attr]
    return client, shop, people, csrf


def test_a_scenario_form_with_enabled_yes_is_refused_and_keeps_the_preset_and_its_messages(merchant, runtime, session) -> None:  # type: ignore[no-untyped-def]
    from plugin.engine.tick import run_shop_tick

    client, shop, _, csrf = merchant
    run_shop_tick(runtime, shop.id or 0)
    refused = client.post("/app/settings/scenarios/cart_recovery", data={"csrf": csrf, "enabled": "yes"})
    assert refused.status_code == 422 and "enabled" in refused.text
    session.expire_all()
    setting = session.execute(select(ScenarioSetting).where(ScenarioSetting.scenario_key == "cart_recovery")).scalar_one()
    assert setting.enabled
    statuses = set(session.execute(select(Message.status)).scalars())
    assert statuses == {"pending"}


def test_the_settings_page_counts_what_the_shop_holds(merchant, session) -> None:  # type: ignore[no-untyped-def]
    from plugin.storage.models import SyncState

    client, shop, _, _ = merchant
    session.add(SyncState(shop_id=shop.id, resource="customers", last_count=1))  # the last sync changed one
    session.commit()
    page = client.get("/app/settings").text
    held = re.search(r"<td>顧客</td><td>(\d+)</td>", page)
    assert held is not None and held.group(1) == "2"


def test_reading_a_mail_in_the_demo_outbox_does_not_count_as_an_open(catcher) -> None:  # type: ignore[no-untyped-def]
    import smtplib
    from email.mime.text import MIMEText

    from fastapi import FastAPI

    from plugin.demo.routes import demo_router

    html = ('<p>本文</p><img src="http://okaeri.test/t/o/7/abcDEF_-12345678901234.gif" width="1" height="1" alt="">'
            '<img src="http://shop.example/item.jpg" alt="item">')
    mail = MIMEText(html, "html", "utf-8")
    mail["Subject"], mail["From"], mail["To"] = "test", "a@example.jp", "b@example.jp"
    with smtplib.SMTP("127.0.0.1", catcher.port) as smtp:
        smtp.sendmail("a@example.jp", ["b@example.jp"], mail.as_bytes())
    app = FastAPI()
    app.include_router(demo_router(catcher))
    shown = TestClient(app).get("/demo/outbox/0").text
    assert "/t/o/" not in shown and "item.jpg" in shown and "本文" in shown


def test_the_unsubscribe_link_of_a_test_send_and_a_preview_unsubscribes_nobody(merchant, session, catcher) -> None:  # type: ignore[no-untyped-def]
    from plugin.storage.models import Customer, Suppression

    client, _, people, csrf = merchant
    assert client.post("/app/settings/scenarios/cart_recovery/test-send", data={"csrf": csrf}).status_code == 200
    mail = catcher.snapshot()[0]
    header = mail["List-Unsubscribe"].strip("<>")
    body = mail.get_body(("plain",)).get_content()
    preview = client.get("/app/settings/scenarios/cart_recovery/preview").text
    assert header.endswith("/u/preview") and header in body and "/u/preview" in preview
    assert not re.search(r"/u/\d+\.\d+\.", body + preview)  # no real customer's signed link
    path = header.removeprefix("http://okaeri.test")
    page, posted = client.get(path), client.post(path)
    assert page.status_code == posted.status_code == 200 and "配信停止は行われていません" in posted.text
    assert session.execute(select(func.count()).select_from(Suppression)).scalar() == 0
    session.expire_all()
    assert all(session.get(Customer, p.id).email_consent for p in people)


@pytest.mark.parametrize("field, value, words", [("delay_minutes", "x", "配信までの待ち時間(分)は整数"),
                                                 ("holdout_percent", "90", "0〜50の範囲")])
def test_a_bad_number_on_the_scenario_form_is_refused_in_japanese_first(merchant, field, value, words) -> None:  # type: ignore[no-untyped-def]
    client, _, _, csrf = merchant
    refused = client.post("/app/settings/scenarios/cart_recovery", data={"csrf": csrf, "enabled": "1", field: value})
    assert refused.status_code == 422 and words in refused.json()["detail"]

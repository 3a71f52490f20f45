"""Small edges a stranger or a careless form could reach (issue 12): each refused with a reason,
nothing written twice, nothing published that need not be."""
from __future__ import annotations

import json
import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from connectors.signatures import hmac_sha256_b64
from plugin.storage.models import ConsentRecord, Message, ScenarioSetting, Shop
from plugin.web.app import create_app
from plugin.web.deps import SESSION_COOKIE, session_cookie
from tests.factories import idle_cart_shop


def _hook(client: TestClient, body: bytes):  # type: ignore[no-untyped-def]
    return client.post("/colorme/hooks/install", content=body,
                       headers={"X-Appstore-Signature": hmac_sha256_b64("whsecret", body)})


@pytest.mark.parametrize("account", ["PA12345678\n", "PA１２３４５６７８", " PA12345678", "PA123456789"])
def test_an_account_id_must_be_exactly_pa_and_eight_ascii_digits(runtime, session, account) -> None:  # type: ignore[no-untyped-def]
    client = TestClient(create_app(runtime))
    assert _hook(client, json.dumps({"account_id": account}).encode()).status_code == 400
    assert client.get("/colorme/oauth/start", params={"account_id": account}, follow_redirects=False).status_code == 400
    assert session.execute(select(func.count()).select_from(Shop)).scalar() == 0


def test_a_validly_signed_but_huge_hook_body_is_a_413_and_stores_nothing(runtime, session) -> None:  # type: ignore[no-untyped-def]
    body = json.dumps({"account_id": "PA12345678", "mail": "x" * (1024 * 1024)}).encode()
    assert _hook(TestClient(create_app(runtime)), body).status_code == 413
    assert session.execute(select(func.count()).select_from(Shop)).scalar() == 0


def test_the_api_map_is_not_published(runtime) -> None:  # type: ignore[no-untyped-def]
    client = TestClient(create_app(runtime))
    assert client.get("/openapi.json").status_code == 404
    assert client.get("/docs").status_code == 404


def test_a_second_one_click_unsubscribe_records_consent_once(runtime, session, clock) -> None:  # type: ignore[no-untyped-def]
    from plugin.measurement.links import unsubscribe_token

    shop, people, _ = idle_cart_shop(session, clock.now(), customers=1)
    client = TestClient(create_app(runtime))
    link = f"/u/{unsubscribe_token(runtime, shop.id or 0, people[0].id or 0, None)}"
    assert client.post(link).status_code == 200 and client.post(link).status_code == 200
    withdrawn = session.execute(select(func.count()).select_from(ConsentRecord).where(
        ConsentRecord.consented.is_(False))).scalar()  # type: ignore[attr-defined]
    assert withdrawn == 1


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


NESTED = b"[" * 5000 + b"]" * 5000


@pytest.mark.parametrize("path, body", [
    ("/colorme/hooks/install", NESTED),
    ("/colorme/hooks/install", b'{"account_id": "PA12345678", "mail": "\\ud800"}'),
    ("/colorme/hooks/install", b'{"account_id": "PA12345678", "x": ' + b"[" * 100 + b"]" * 100 + b"}"),
    ("/colorme/hooks/uninstall", b'{"account_id": "PA12345678", "uninstalled_at": 1e400}'),
    ("/colorme/hooks/uninstall", b'{"account_id": "PA12345678", "uninstalled_at": 100000000000000000000}'),
    ("/colorme/hooks/uninstall", b'{"account_id": "PA12345678", "uninstalled_at": -5}'),
])
def test_a_signed_hook_with_a_hostile_body_is_a_400_with_a_reason(runtime, session, path, body) -> None:  # type: ignore[no-untyped-def]
    answer = _hook_to(TestClient(create_app(runtime), raise_server_exceptions=False), path, body)
    assert answer.status_code == 400 and answer.json()["error"]
    assert session.execute(select(func.count()).select_from(Shop)).scalar() == 0


def _hook_to(client: TestClient, path: str, body: bytes):  # type: ignore[no-untyped-def]
    return client.post(path, content=body, headers={"X-Appstore-Signature": hmac_sha256_b64("whsecret", body)})


@pytest.mark.parametrize("body", [NESTED, b'{"type": "basket", "customer_id": "1", "cart_url": "\\udfff", "items": []}',
                                  b'{"type": "product_view", "customer_id": "1", "product_id": "1", "occurred_at": 1e400}'])
def test_a_storefront_beacon_with_a_hostile_body_is_a_422(runtime, session, clock, body) -> None:  # type: ignore[no-untyped-def]
    shop, _, _ = idle_cart_shop(session, clock.now(), customers=1)
    answer = TestClient(create_app(runtime), raise_server_exceptions=False).post(f"/events/colorme/{shop.event_key}",
                                                                                 content=body)
    assert answer.status_code == 422


def test_a_preview_for_an_impossible_customer_id_is_a_4xx(merchant) -> None:  # type: ignore[no-untyped-def]
    client, _, _, _ = merchant
    for customer in (str(10**20), "-1", "x"):
        assert 400 <= client.get(f"/app/settings/scenarios/cart_recovery/preview?customer={customer}").status_code < 500


@pytest.mark.parametrize("field, value, words", [("delay_minutes", "x", "配信までの待ち時間(分)は整数"),
                                                 ("holdout_percent", "90", "0〜50の範囲")])
def test_a_bad_number_on_the_scenario_form_is_refused_in_japanese_first(merchant, field, value, words) -> None:  # type: ignore[no-untyped-def]
    client, _, _, csrf = merchant
    refused = client.post("/app/settings/scenarios/cart_recovery", data={"csrf": csrf, "enabled": "1", field: value})
    assert refused.status_code == 422 and words in refused.json()["detail"]

"""The merchant's settings: the one switch, tuning one preset, preview, test send, reports."""
from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from plugin.channels.layout import CopyError, render_copy
from plugin.delivery.batch import deliver
from plugin.engine.tick import run_shop_tick
from plugin.gates.decisions import explain
from plugin.storage.models import Message, MessageEvent, ScenarioSetting
from plugin.web.app import create_app
from plugin.web.deps import SESSION_COOKIE, session_cookie
from tests.factories import idle_cart_shop


@pytest.fixture
def merchant(runtime, session, clock):  # type: ignore[no-untyped-def]
    shop, people, product = idle_cart_shop(session, clock.now(), customers=2)
    client = TestClient(create_app(runtime))
    client.cookies.set(SESSION_COOKIE, session_cookie(runtime, shop.id))
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/app/settings").text).group(1)  # type: ignore[union-attr]
    return client, shop, people, csrf


def test_one_switch_turns_on_what_the_data_supports_and_says_why_not(merchant, session) -> None:  # type: ignore[no-untyped-def]
    client, shop, _, csrf = merchant
    page = client.post("/app/settings/standard-scenarios", data={"csrf": csrf, "enabled": "1"})
    assert page.status_code == 200
    enabled = dict(session.execute(select(ScenarioSetting.scenario_key, ScenarioSetting.enabled)).all())
    assert enabled["cart_recovery"] and enabled["winback"] and not enabled["point_expiry"]
    assert "ポイントデータがありません" in page.text


def test_a_preset_is_tuned_alone_and_bad_templates_are_refused(merchant, session) -> None:  # type: ignore[no-untyped-def]
    client, _, _, csrf = merchant
    ok = client.post("/app/settings/scenarios/cart_recovery", data={
        "csrf": csrf, "enabled": "1", "delay_minutes": "90", "holdout_percent": "5",
        "subject_template": "{{ customer.name }} 様、お忘れではありませんか"})
    assert ok.status_code == 200
    setting = session.execute(select(ScenarioSetting).where(ScenarioSetting.scenario_key == "cart_recovery")).scalar_one()
    assert (setting.delay_minutes, setting.holdout_percent) == (90, 5)
    unsafe = client.post("/app/settings/scenarios/cart_recovery", data={
        "csrf": csrf, "enabled": "1", "subject_template": "{{ customer.__class__.__mro__ }}"})
    assert unsafe.status_code == 422 and "テンプレートでは使えない機能を使っています" in unsafe.text
    broken = client.post("/app/settings/scenarios/cart_recovery", data={"csrf": csrf, "delay_minutes": "soon"})
    assert broken.status_code == 422 and "delay_minutes" in broken.json()["detail"]
    assert client.post("/app/settings/scenarios/nope", data={"csrf": csrf}).status_code == 404


def test_sandbox_bounds_runaway_output() -> None:
    with pytest.raises(CopyError, match="longer than"):
        render_copy("{% for i in range(1000) %}0123456789{% endfor %}", {})


def test_preview_renders_with_a_real_customer_and_test_send_goes_to_the_merchant(merchant, catcher) -> None:  # type: ignore[no-untyped-def]
    client, shop, people, csrf = merchant
    preview = client.get("/app/settings/scenarios/cart_recovery/preview")
    assert preview.status_code == 200 and "カートに商品が残っています" in preview.text
    assert int(preview.headers["X-Preview-Customer"]) in {p.id for p in people}
    sent = client.post("/app/settings/scenarios/cart_recovery/test-send", data={"csrf": csrf})
    assert sent.status_code == 200
    mail, = catcher.snapshot()
    assert mail["To"].addresses[0].addr_spec == shop.owner_email and mail["Subject"].startswith("[テスト送信]")


def test_opens_and_clicks_are_recorded_and_reported(runtime, session, clock, catcher, merchant) -> None:  # type: ignore[no-untyped-def]
    client, shop, _, _ = merchant
    ids = run_shop_tick(runtime, shop.id)
    for message_id, _ in ids:
        deliver(runtime, message_id)
    html = catcher.snapshot()[0].get_body(("html",)).get_content()
    pixel = re.search(r'src="http://okaeri.test(/t/o/[^"]+)"', html).group(1)  # type: ignore[union-attr]
    link = re.search(r'href="http://okaeri.test(/t/c/[^"]+)"', html).group(1)  # type: ignore[union-attr]
    assert client.get(pixel).headers["content-type"] == "image/gif"
    click = client.get(link, follow_redirects=False)
    assert click.status_code == 302 and click.headers["location"].startswith("https://test.shop-pro.jp")
    assert client.get(link[:-4] + "abcd", follow_redirects=False).status_code == 400  # tampered: no open redirect
    elsewhere = link.split("?u=")[0] + "?u=https%3A%2F%2Fevil.example%2F"
    assert client.get(elsewhere, follow_redirects=False).status_code == 400
    assert sorted(session.execute(select(MessageEvent.kind)).scalars()) == ["click", "open"]
    report = client.get("/app/reports").json()
    week = next(s for s in report["scenarios"] if s["key"] == "cart_recovery")["weeks"][0]
    assert (week["sent"], week["opens"], week["clicks"]) == (2, 1, 1)
    assert client.get("/app/reports?weeks=0").status_code == 422
    assert explain(session.execute(select(Message.decision)).scalars().first())[:2] == [
        "同意: メール受信に同意済み、配信停止リストになし", "頻度上限: 問題なし"]

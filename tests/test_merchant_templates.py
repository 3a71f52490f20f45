"""Merchant templates with a bounded cost (issue 12, item 4): a runaway template stops with a
clear reason and holds no other client; the save check tries several kinds of customer; preview
and test-send explain a failure in the console's language; delivery fails just that message."""
from __future__ import annotations

import asyncio
import re
import threading
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

import plugin.channels.layout as layout
import plugin.channels.sandbox as sandbox
from plugin.channels.layout import CopyError, render_copy
from plugin.delivery.batch import deliver, deliver_batch
from plugin.engine.tick import run_shop_tick
from plugin.storage import outbox
from plugin.storage.models import Message, MessageStatus, ScenarioSetting
from plugin.web.app import create_app
from plugin.web.deps import SESSION_COOKIE, session_cookie
from plugin.web.rendering import THREAD_PREFIX
from tests.factories import idle_cart_shop, make_customer

PYTHON_WORDS = re.compile(r"Error|Traceback|division by zero|is undefined|object|unsafe\.")
NESTED = "{% for a in range(1000) %}{% for b in range(1000) %}{% endfor %}{% endfor %}"
FAILS_FOR_THE_NAMELESS = "{% if customer.name == 'お客' %}{{ 1/0 }}{% endif %}"  # a nameless customer is greeted お客 様
BREAKS_FOR_OTHERS = "{% if customer.name != '山田 花子' %}{{ 1/0 }}{% endif %}ご来店ありがとうございます"


@pytest.fixture
def merchant(runtime, session, clock):  # type: ignore[no-untyped-def]
    shop, people, product = idle_cart_shop(session, clock.now(), customers=3)
    client = TestClient(create_app(runtime), raise_server_exceptions=False)
    client.cookies.set(SESSION_COOKIE, session_cookie(runtime, shop.id))
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/app/settings").text).group(1)  # type: ignore[union-attr]
    return client, shop, people, csrf


def _saved(session, shop, key: str = "cart_recovery") -> ScenarioSetting | None:  # type: ignore[no-untyped-def]
    session.expire_all()
    return session.execute(select(ScenarioSetting).where(
        ScenarioSetting.shop_id == shop.id, ScenarioSetting.scenario_key == key)).scalar_one_or_none()


def _store_template(session, shop, subject: str) -> None:  # type: ignore[no-untyped-def]
    """A template saved before the check existed (or by another path): preview and delivery must cope."""
    setting = _saved(session, shop)
    assert setting is not None
    setting.subject_template = subject
    session.add(setting)
    session.commit()


# --- bounded cost -------------------------------------------------------------------------------

@pytest.mark.parametrize("source, kind", [
    ("{{ 1/0 }}", "division_by_zero"),
    ("{{ 7 // 0 }}", "division_by_zero"),
    ("{{ range(10**7)|list }}", "too_much_work"),
    ("{% for i in range(10**7) %}{% endfor %}", "too_much_work"),
    ("{{ 10**5000 }}", "too_much_work"),
    (NESTED, "too_much_work"),
    ("{% macro m(n) %}{% if n %}{{ m(n-1) }}{{ m(n-1) }}{% endif %}{% endmacro %}{{ m(40) }}", "too_much_work"),
    ("{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}", "too_much_work"),
    ("{{ 'x' * 10**9 }}", "too_long"),
    ("{{ 'x'|center(10**9) }}", "too_long"),
    ("{{ '%0999999999d' % 1 }}", "too_long"),
    ("{{ ('a' * 5000).replace('', 'b' * 5000) }}", "too_long"),
    ("{{ '{:>999999999}'.format(1) }}", "unsafe"),
    ("{{ [1, 2].append(3) }}", "unsafe"),
    ("{{ lipsum(10**6) }}", "unknown_variable"),
    ("{{ coupon.code }}", "unknown_variable"),
    ("{% if %}", "syntax"),
])
def test_a_costly_or_broken_template_stops_with_a_reason_a_merchant_can_read(source: str, kind: str) -> None:
    # When a template that would run away (or cannot run) is rendered
    with pytest.raises(CopyError) as refused:
        render_copy(source, {"customer": {"name": "山田 花子"}, "items": []})
    # Then it stops with its kind, explained without any Python text, in both languages
    # (a runaway loop meets either budget first, steps or time, depending on the machine's speed)
    assert refused.value.kind == kind or (kind == "too_much_work" and refused.value.kind == "too_slow")
    assert not PYTHON_WORDS.search(refused.value.explain("ja"))
    assert refused.value.explain("en") != refused.value.explain("ja")


def test_ordinary_copy_still_renders() -> None:
    variables = {"customer": {"name": "山田 花子"}, "items": [{"name": "深煎り", "price": 1200}], "points": {"balance": 300}}
    source = ("{{ customer.name }} 様、{% for item in items %}{{ loop.index }}. {{ item.name }} {{ item.price|money }}"
              "{% endfor %}/ {{ points.balance * 2 }}pt {{ customer.name|length }} {{ 2 ** 10 }} {{ '%05d' % 42 }}")
    assert render_copy(source, variables) == "山田 花子 様、1. 深煎り 1,200円/ 600pt 5 1024 00042"


def test_output_stops_as_soon_as_it_passes_the_cap_not_after() -> None:
    # Given a template whose every step writes ten characters and counts itself
    steps = []

    def ten() -> str:
        steps.append(1)
        return "0123456789"

    # When it would write 10,000 characters
    with pytest.raises(CopyError) as refused:
        render_copy("{% for i in range(1000) %}{{ ten() }}{% endfor %}", {"ten": ten})
    # Then rendering stopped right after the 5,000th character, not at the end of the loop
    assert refused.value.kind == "too_long"
    assert len(steps) == layout.MAX_COPY_CHARS // 10 + 1


def test_the_time_budget_stops_a_template_that_runs_out_of_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sandbox, "RENDER_SECONDS", -1.0)  # a budget already spent: the first step is over it
    with pytest.raises(CopyError) as refused:
        render_copy("{% for i in range(3) %}{{ i }}{% endfor %}", {})
    assert refused.value.kind == "too_slow"
    assert "時間がかかりすぎます" in refused.value.explain("ja")


# --- off the event loop -------------------------------------------------------------------------

def test_console_renderings_run_in_the_rendering_threads_not_on_the_event_loop(merchant, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    client, _, _, csrf = merchant
    where: list[tuple[str, bool]] = []
    real = layout.render_bounded

    def watched(*args: Any) -> str:
        try:
            asyncio.get_running_loop()
            on_loop = True
        except RuntimeError:
            on_loop = False
        where.append((threading.current_thread().name, on_loop))
        return real(*args)

    monkeypatch.setattr(layout, "render_bounded", watched)
    assert client.post("/app/settings/scenarios/cart_recovery", data={
        "csrf": csrf, "enabled": "1", "subject_template": "{{ customer.name }} 様"}).status_code == 200
    assert client.get("/app/settings/scenarios/cart_recovery/preview").status_code == 200
    assert client.post("/app/settings/scenarios/cart_recovery/test-send", data={"csrf": csrf}).status_code == 200
    assert where and all(name.startswith(THREAD_PREFIX) and not on_loop for name, on_loop in where)


def test_healthz_answers_while_a_worst_case_template_renders(runtime, merchant, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    _, shop, _, csrf = merchant
    rendering, answered = threading.Event(), threading.Event()
    answered_during_render: list[bool] = []
    real = layout.render_bounded

    def slow(*args: Any) -> str:  # holds the rendering until /healthz has answered (or 10 s passed)
        rendering.set()
        answered_during_render.append(answered.wait(10))
        return real(*args)

    monkeypatch.setattr(layout, "render_bounded", slow)
    with TestClient(create_app(runtime), raise_server_exceptions=False) as client:  # one event loop for both
        client.cookies.set(SESSION_COOKIE, session_cookie(runtime, shop.id))
        saved: list[Any] = []
        post = threading.Thread(target=lambda: saved.append(client.post("/app/settings/scenarios/cart_recovery", data={
            "csrf": csrf, "enabled": "1", "subject_template": NESTED})))
        post.start()
        assert rendering.wait(10)
        assert client.get("/healthz").json() == {"status": "ok"}
        answered.set()
        post.join(20)
    assert answered_during_render[0] is True
    assert saved[0].status_code == 422 and "繰り返しや計算が多すぎます" in saved[0].text


# --- the save check -----------------------------------------------------------------------------

def test_a_template_that_only_works_for_the_sample_customer_is_refused_at_save(merchant, session) -> None:  # type: ignore[no-untyped-def]
    client, shop, _, csrf = merchant
    refused = client.post("/app/settings/scenarios/cart_recovery", data={
        "csrf": csrf, "enabled": "1", "delay_minutes": "90", "subject_template": BREAKS_FOR_OTHERS})
    assert refused.status_code == 422 and refused.headers["content-type"].startswith("text/html")
    assert "件名のテンプレートは" in refused.text and "0で割る計算があります" in refused.text
    assert not PYTHON_WORDS.search(re.search(r'role="alert">([^<]+)<', refused.text).group(1))  # type: ignore[union-attr]
    assert "{% if customer.name != &#39;山田 花子&#39; %}" in refused.text  # what was typed is shown again, to fix
    setting = _saved(session, shop)
    assert setting is not None and setting.subject_template is None and setting.delay_minutes is None  # nothing saved


def test_the_save_check_names_the_customer_with_no_name(merchant, session, clock) -> None:  # type: ignore[no-untyped-def]
    client, shop, _, csrf = merchant
    nameless = make_customer(session, shop, clock.now(), name="")
    refused = client.post("/app/settings/scenarios/cart_recovery", data={
        "csrf": csrf, "enabled": "1", "body_template": FAILS_FOR_THE_NAMELESS})
    assert refused.status_code == 422
    assert f"本文の冒頭のテンプレートは名前が空のお客様(ID {nameless.id})では表示できません: 0で割る計算があります" in refused.text


def test_the_save_check_speaks_english_when_the_console_does(merchant, session, clock) -> None:  # type: ignore[no-untyped-def]
    client, shop, _, csrf = merchant
    make_customer(session, shop, clock.now(), name="")
    refused = client.post("/app/settings/scenarios/cart_recovery?lang=en", data={
        "csrf": csrf, "enabled": "1", "body_template": FAILS_FOR_THE_NAMELESS})
    assert refused.status_code == 422
    assert "The opening text template cannot be rendered for a customer with no name" in refused.text
    assert "it divides by zero" in refused.text and "0で割る" not in refused.text


@pytest.mark.parametrize("template, who, why", [
    ("{{ 100 // items|length }}", "架空のお客様(名前・ポイント・注文がすべて空)", "0で割る計算があります"),
    ("{% for i in range(20) %}{{ customer.name }}{% endfor %}", "架空のお客様(登録できる最長の名前)", "文章が長すぎます"),
    ("{{ coupon.code }} をどうぞ", "", "存在しない項目を参照しています(coupon)"),
    (NESTED, "", "繰り返しや計算が多すぎます"),
])
def test_the_save_check_tries_edge_customers_and_says_why(merchant, session, template, who, why) -> None:  # type: ignore[no-untyped-def]
    # Given real customers who all have a cart and an ordinary name
    client, shop, _, csrf = merchant
    # When a template that fails only for an unusual customer (or for all) is saved
    refused = client.post("/app/settings/scenarios/cart_recovery", data={
        "csrf": csrf, "enabled": "1", "subject_template": template})
    # Then it is refused, saying for whom and why, and nothing is saved
    assert refused.status_code == 422 and who in refused.text and why in refused.text
    assert _saved(session, shop).subject_template is None  # type: ignore[union-attr]


def test_a_template_that_works_for_every_kind_of_customer_is_saved(merchant, session, clock) -> None:  # type: ignore[no-untyped-def]
    client, shop, _, csrf = merchant
    make_customer(session, shop, clock.now(), name="")
    template = "{{ customer.name or 'お客' }} 様、{{ items|length }}点がカートに残っています"
    saved = client.post("/app/settings/scenarios/cart_recovery", data={"csrf": csrf, "enabled": "1", "subject_template": template},
                        follow_redirects=False)
    assert saved.status_code == 303
    assert _saved(session, shop).subject_template == template  # type: ignore[union-attr]


# --- preview and test-send ----------------------------------------------------------------------

def test_preview_of_a_template_that_fails_for_this_customer_is_a_page_not_a_500(merchant, session) -> None:  # type: ignore[no-untyped-def]
    client, shop, people, _ = merchant
    _store_template(session, shop, BREAKS_FOR_OTHERS)
    page = client.get(f"/app/settings/scenarios/cart_recovery/preview?customer={people[0].id}")
    assert page.status_code == 422 and page.headers["content-type"].startswith("text/html")
    assert f"このメッセージはこのお客様(ID {people[0].id})では表示できません: 0で割る計算があります" in page.text
    english = client.get(f"/app/settings/scenarios/cart_recovery/preview?customer={people[0].id}&lang=en")
    assert english.status_code == 422 and "it divides by zero" in english.text


@pytest.mark.parametrize("customer", [str(10**20), "0", "-1", "x"])
def test_preview_with_a_customer_id_out_of_range_is_a_4xx(merchant, customer: str) -> None:  # type: ignore[no-untyped-def]
    client, _, _, _ = merchant
    assert 400 <= client.get(f"/app/settings/scenarios/cart_recovery/preview?customer={customer}").status_code < 500


def test_test_send_of_a_failing_template_sends_nothing_and_says_why(merchant, session, catcher) -> None:  # type: ignore[no-untyped-def]
    client, shop, _, csrf = merchant
    _store_template(session, shop, BREAKS_FOR_OTHERS)
    answer = client.post("/app/settings/scenarios/cart_recovery/test-send", data={"csrf": csrf})
    assert answer.status_code == 422 and answer.headers["content-type"].startswith("text/html")
    assert "0で割る計算があります" in answer.text
    assert catcher.snapshot() == []


# --- delivery -----------------------------------------------------------------------------------

def test_a_batch_with_one_message_the_template_fails_for_delivers_the_others(runtime, session, clock, catcher, merchant) -> None:  # type: ignore[no-untyped-def]
    # Given three reminders, and a template that divides by zero for one customer's name
    client, shop, people, _ = merchant
    people[1].name = "割れる"
    session.add(people[1])
    session.commit()
    _store_template(session, shop, "{% if customer.name == '割れる' %}{{ 1/0 }}{% endif %}{{ customer.name }} 様")
    ids = [message_id for message_id, _ in run_shop_tick(runtime, shop.id)]
    # When the batch is delivered
    deliver_batch(runtime, ids)
    # Then the two others arrive, and that one message failed with the reason, once
    assert sorted(m["To"].addresses[0].addr_spec for m in catcher.snapshot()) == sorted([people[0].email, people[2].email])
    session.expire_all()
    rows = {m.customer_id: m for m in session.execute(select(Message)).scalars()}
    broken = rows[people[1].id]
    assert broken.status == MessageStatus.failed and broken.last_error.startswith("template failed: division_by_zero")
    assert broken.attempts == 1 and broken.lease_until is None
    assert {rows[p.id].status for p in (people[0], people[2])} == {MessageStatus.sent}
    # And it is not retried: neither delivered again nor swept back later
    assert deliver(runtime, broken.id or 0) == ("skipped", None)
    assert broken.id not in {message_id for message_id, _ in outbox.due_for_enqueue(session, clock.now() + timedelta(hours=1))}
    # And the merchant sees it on the settings page, per scenario, in the console's language
    page = client.get("/app/settings").text
    assert "1件が送信されていません: テンプレートを表示できませんでした(0で割る計算があります)" in page
    assert "1 message not sent: the template failed (it divides by zero)" in client.get("/app/settings?lang=en").text


def test_a_lone_message_the_template_fails_for_is_failed_not_left_sending(runtime, session, clock, catcher) -> None:  # type: ignore[no-untyped-def]
    shop, people, _ = idle_cart_shop(session, clock.now(), customers=1)
    setting = _saved(session, shop)
    setting.subject_template = "{{ 1/0 }}"  # type: ignore[union-attr]
    session.add(setting)
    session.commit()
    (message_id, _), = run_shop_tick(runtime, shop.id)
    deliver(runtime, message_id)
    session.expire_all()
    message = session.get(Message, message_id)
    assert message is not None and message.status == MessageStatus.failed and catcher.snapshot() == []

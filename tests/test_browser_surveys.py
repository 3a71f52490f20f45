"""The NPS survey in a real browser: a customer opens a delivered survey mail (the demo's mail
catcher), clicks a score, adds a comment, and the merchant sees it on /app/surveys."""
from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from plugin.delivery.batch import deliver_batch
from plugin.demo.mailcatcher import free_port
from plugin.demo.routes import demo_router
from plugin.engine.tick import run_shop_tick
from plugin.runtime import Runtime, build_runtime
from plugin.storage.models import Message
from plugin.web.app import create_app
from tests.conftest import require_service
from tests.factories import enable, make_customer, make_order, make_product, make_shop
from tests.live import serve
from tests.test_browser import ARGS, CHROMIUM

pytestmark = [pytest.mark.browser, pytest.mark.slow]
SCREENSHOTS = Path(os.environ.get("OKAERI_SCREENSHOTS", "")) if os.environ.get("OKAERI_SCREENSHOTS") else None


@pytest.fixture
def served(settings, engine, clock, broker, catcher) -> Iterator[tuple[Runtime, str]]:  # type: ignore[no-untyped-def]
    """The app with the demo's mail viewer, on a loopback port its mail links point at."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    runtime = build_runtime(settings.model_copy(update={"base_url": base_url}), clock=clock, broker=broker, engine=engine)
    app = create_app(runtime)
    app.include_router(demo_router(catcher))
    with serve(app, port):
        yield runtime, base_url
    runtime.close_channels()


@pytest.fixture
def page():  # type: ignore[no-untyped-def]
    require_service("chromium", os.path.exists(CHROMIUM), "install Debian's chromium package (.ci/run does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser.new_page(locale="ja-JP")
        browser.close()


def test_a_customer_answers_the_survey_mail_and_the_merchant_sees_it(served, session, clock, page, tmp_path) -> None:  # type: ignore[no-untyped-def]
    runtime, base_url = served
    # Given a customer who ordered tea a week ago, and the survey mail delivered to them
    now = clock.now()
    shop = make_shop(session, now, name="お茶の森")
    enable(session, shop, "post_purchase", now)
    tea = make_product(session, shop, now, name="深蒸し煎茶 100g")
    make_order(session, shop, make_customer(session, shop, now, name="山田 花子"), now - timedelta(days=7, hours=1), [tea])
    run_shop_tick(runtime, shop.id)
    deliver_batch(runtime, list(session.execute(select(Message.id)).scalars()))
    # When the customer opens it and clicks 9
    page.goto(f"{base_url}/demo/outbox")
    page.click("text=商品はいかがですか？")
    page.screenshot(path=str((SCREENSHOTS or tmp_path) / "survey-mail.png"), full_page=True)
    mail = page.frame_locator("iframe")  # the viewer shows the mail as a mail client would, links open a new tab
    assert "このショップを友人や知人にすすめる可能性" in mail.locator("body").inner_text()
    with page.expect_popup() as opened:
        mail.locator("a[data-score='9']").click()
    page = opened.value
    page.wait_for_load_state()
    # Then the thank-you page asks for a comment, with 9 chosen
    assert "ご回答ありがとうございました" in page.locator("#message").inner_text()
    assert page.locator("input[name=score][value='9']").is_checked()
    page.screenshot(path=str((SCREENSHOTS or tmp_path) / "survey-answer.png"), full_page=True)
    page.fill("#comment", "香りが良くて、毎朝飲んでいます。")
    page.click("#send")
    assert "ご回答を受け付けました" in page.locator("#message").inner_text()
    # And the merchant sees the answer, the NPS and the comment on /app/surveys
    page.goto(f"{base_url}/demo/login")
    page.goto(f"{base_url}/app/")  # the dashboard shows the period's NPS beside the scenarios' figures
    assert page.locator("#dashboard-nps").inner_text() == "+100"
    assert "1 件の回答" in page.locator("#nps-card").inner_text()
    page.goto(f"{base_url}/app/surveys")
    assert page.locator("#answers").inner_text() == "1"
    assert page.locator("#nps").inner_text() == "+100"
    assert page.locator("#by-group tr[data-group] td").first.inner_text() == "深蒸し煎茶 100g"
    assert "香りが良くて、毎朝飲んでいます。" in page.locator("#comments").inner_text()
    page.screenshot(path=str((SCREENSHOTS or tmp_path) / "surveys.png"), full_page=True)
    # and in English on one click
    page.click("text=English")
    assert "Surveys and NPS" in page.locator("h1").inner_text()

"""The dashboard in a real browser (Debian's Chromium driven by Playwright): log in, read a chart and
its table, switch the period, download the CSV. It also takes the README's screenshots."""
from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from plugin.storage.models import Message, MessageStatus
from tests.live import live_demo, synced, wait_until
from tests.test_browser import page  # noqa: F401 (the Chromium page fixture)

import pytest  # isort: skip

pytestmark = [pytest.mark.browser, pytest.mark.slow]
SCREENSHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"


def _sent(stack) -> int:  # type: ignore[no-untyped-def]
    with stack.runtime.sessions() as session:
        return int(session.execute(select(func.count()).where(Message.status == MessageStatus.sent)).scalar() or 0)


def test_merchant_reads_the_dashboard_switches_the_period_and_downloads_csv(page, settings, broker, tmp_path) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    with live_demo(settings, broker) as stack:
        # Given a merchant who installed Okaeri: the install lands on the dashboard
        page.set_viewport_size({"width": 1200, "height": 1500})
        page.goto(f"{stack.base_url}/sandbox/")
        page.click("#install")
        page.click("#approve")
        page.wait_for_url(f"{stack.base_url}/app/")
        assert page.locator("h1").inner_text() == "ダッシュボード"
        assert wait_until(lambda: synced(stack), timeout=120)
        # and who turned the standard scenarios on, so mails go out
        page.click("nav.console >> text=設定・シナリオ")
        page.click("#standard-switch")
        assert page.locator("#standard-state").inner_text() == "ON"
        assert wait_until(lambda: _sent(stack) > 0, timeout=120)
        page.reload()
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "settings.png"))
        # When they open the dashboard
        page.click("nav.console >> text=ダッシュボード")
        page.wait_for_selector("#chart-messages[data-drawn='1']")
        # Then the chart is drawn and the table beneath it holds the same numbers as the total
        sent = sum(int(cell.inner_text()) for cell in page.locator("#table-messages tbody tr td:nth-child(2)").all())
        assert sent == int(page.locator("#total-sent").inner_text().replace(",", "")) > 0
        assert page.locator("#table-messages tbody tr").count() == 30
        page.screenshot(path=str(SCREENSHOTS / "dashboard.png"))
        # When they switch to the last 7 days, by week
        page.click("a[data-period='7']")
        page.wait_for_url("**/app/?period=7**")
        assert page.locator("#table-messages tbody tr").count() == 7
        page.select_option("select[name=by]", "week")
        page.click("#show-period")
        page.wait_for_selector("#chart-messages[data-drawn='1']")
        assert page.locator("#table-messages tbody tr").count() in (1, 2)  # 7 days span one or two ISO weeks
        # and download the CSV
        with page.expect_download() as download:
            page.click("#csv")
        saved = tmp_path / "dashboard.csv"
        download.value.save_as(saved)
        data = saved.read_bytes()
        assert data.startswith(b"\xef\xbb\xbf") and "週(月曜日),key,シナリオ,送信" in data.decode("utf-8-sig")

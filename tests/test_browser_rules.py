"""The shop rules page in a real browser: a grouping rule is previewed, saved, and said back."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.live import live_demo
from tests.test_browser import install_in_browser, page  # noqa: F401 (page: the Chromium page fixture)

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_merchant_groups_product_codes_and_sees_the_products_the_rule_takes(page, settings, broker, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    with live_demo(settings, broker) as stack:
        # Given a merchant who installed Okaeri and whose products are synced
        install_in_browser(page, stack)
        page.goto(f"{stack.base_url}/app/settings")
        # When they open the rules page and describe one product's codes
        page.click("#rules-link")
        assert "まだルールはありません" in page.locator("#no-rules").inner_text()
        page.fill("textarea[name=codes]", "01-000*")
        page.fill("input[name=group_name]", "定番ブレンド")
        # Then a preview lists the products it would take, before anything is saved
        page.click("#preview-rule")
        assert "まだ保存していません" in page.locator("#draft-preview").inner_text()
        assert page.locator("#draft-preview table.matches tr").count() > 1
        # And saving it says what it did, and the rule shows its products and their new group
        page.click("#add-rule")
        page.wait_for_load_state()
        assert "ルールを追加し、商品グループを更新しました" in page.locator("#done").inner_text()
        rule = page.locator("div.rule").first
        assert "01-000*" in rule.inner_text() and "定番ブレンド" in rule.locator("table.matches").inner_text()
        page.screenshot(path=str(tmp_path / "rules.png"), full_page=True)
        # and a refused rule is said on the page, in Japanese
        page.fill("textarea[name=codes]", "")
        page.click("#add-rule")
        assert "商品コード(型番)を1つ以上入力してください" in page.locator("#groups-error").inner_text()

"""The shop rules page in a real browser: a grouping rule is previewed, saved, said back, and changes
which post-purchase step the next buyer gets."""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from plugin.engine.tick import run_shop_tick
from plugin.storage.models import Order, OrderLine, Product, Shop
from tests.factories import enable, make_customer, make_product
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


def _buyer_of_sample_then_regular(stack, shop_id: int, label: str, sample_id: int, regular_id: int) -> int:  # type: ignore[no-untyped-def]
    """A customer who bought the sample a month ago and the regular item a week ago."""
    now = stack.runtime.clock.now()
    with stack.runtime.sessions() as session:
        shop = session.get(Shop, shop_id)
        buyer = make_customer(session, shop, now, external_id=f"GROUP-{label}", email=f"group-{label}@example.jp",
                              name=f"グループ {label}")
        for product_id, ago in ((sample_id, timedelta(days=30, hours=5)), (regular_id, timedelta(days=7, hours=1))):
            product = session.get(Product, product_id)
            assert product is not None
            order = Order(shop_id=shop_id, external_id=f"GROUP-{label}-{product.code}", customer_id=buyer.id,
                          ordered_at=now - ago, updated_at=now - ago, total=product.price)
            session.add(order)
            session.flush()
            session.add(OrderLine(shop_id=shop_id, order_id=order.id, product_id=product.id,
                                  product_external_id=product.external_id, name=product.name, unit_price=product.price))
        session.commit()
        return buyer.id or 0


def test_a_grouping_rule_saved_in_the_browser_changes_which_step_mail_the_next_buyer_gets(page, settings, broker) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    with live_demo(settings, broker) as stack:
        # Given a merchant whose post-purchase steps are on, selling a sample and a regular item of one tea
        install_in_browser(page, stack)
        now = stack.runtime.clock.now()
        with stack.runtime.sessions() as session:
            shop = session.execute(select(Shop)).scalar_one()
            enable(session, shop, "post_purchase", now)
            sample = make_product(session, shop, now, external_id="GROUP-P1", code="TEA-SAMPLE", group_code="TEA-SAMPLE",
                                  name="煎茶 お試し")
            regular = make_product(session, shop, now, external_id="GROUP-P2", code="TEA-REGULAR", group_code="TEA-REGULAR",
                                   name="煎茶 100g")
            shop_id, sample_id, regular_id = shop.id or 0, sample.id or 0, regular.id or 0
        # and a customer who bought the sample, then the regular item: without a rule the regular item
        # starts steps of its own (a survey)
        before = _buyer_of_sample_then_regular(stack, shop_id, "A", sample_id, regular_id)
        run_shop_tick(stack.runtime, shop_id)
        page.goto(f"{stack.base_url}/app/customers/{before}")
        steps_before = page.locator("#timeline .step").all_inner_texts()
        assert any("アンケート" in s for s in steps_before) and any("30日後" in s for s in steps_before)
        # When the merchant groups the two codes on the rules page, previews and saves the rule
        page.goto(f"{stack.base_url}/app/rules")
        page.fill("textarea[name=codes]", "TEA-*")
        page.fill("input[name=group_name]", "煎茶")
        page.click("#preview-rule")
        preview = page.locator("#draft-preview").inner_text()
        assert "煎茶 お試し" in preview and "煎茶 100g" in preview
        page.click("#add-rule")
        page.wait_for_load_state()
        assert "ルールを追加し、商品グループを更新しました" in page.locator("#done").inner_text()
        # Then the next customer with the same purchases continues the sample's steps: the 30-day
        # mail, and no second survey for what is now one product
        after = _buyer_of_sample_then_regular(stack, shop_id, "B", sample_id, regular_id)
        run_shop_tick(stack.runtime, shop_id)
        page.goto(f"{stack.base_url}/app/customers/{after}")
        steps_after = page.locator("#timeline .step").all_inner_texts()
        assert any("30日後" in s for s in steps_after), steps_after
        assert not any("アンケート" in s for s in steps_after), steps_after

"""購入後ステップ配信: after an order — thanks; a "how is it?" survey at +7 days; follow-ups at
30/90/240/365 days. Items are shown per product group (merchant rules merge product codes)."""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, union_all
from sqlmodel import Session, col

from plugin.storage.models import Customer, Message, Order, OrderLine, Product, Shop, Trigger
from scenarios.base import Audience, Copy, Scenario, in_stock_views
from scenarios.sql import trigger

__all__ = ["PostPurchase", "STEPS", "SURVEY_COPY"]

# step → days after the order; the thanks step waits the preset's delay (default 1 h)
STEPS = {"thanks": 0, "survey": 7, "d30": 30, "d90": 90, "d240": 240, "d365": 365}
CATCH_UP = timedelta(days=3)
STEP_COPY = {
    # Plain text: a step's words reach the mail as a variable, so a template tag here would be
    # printed as it stands; the customer's name is in the preset's copy around it.
    "ja": {"thanks": ("ご購入ありがとうございました", "このたびはご購入ありがとうございました。"),
           "survey": ("商品はいかがですか？", "お届けした商品の使い心地はいかがでしょうか。ご感想をお聞かせください。"),
           "follow": ("そろそろいかがですか？", "以前ご購入いただいた商品のご案内です。")},
    "en": {"thanks": ("Thank you for your order", "thank you for your order."),
           "survey": ("How is it going?", "how do you like what you bought? Tell us."),
           "follow": ("Time for more?", "a note about what you bought before.")},
}
# The survey step's 0–10 question; delivery adds the eleven signed answer links (survey.links).
SURVEY_COPY = {
    "ja": {"question": "このショップを友人や知人にすすめる可能性は、どのくらいありますか？",
           "low": "0 = まったくない", "high": "10 = 非常に高い", "hint": "数字をひとつ押すだけで回答できます。"},
    "en": {"question": "How likely are you to recommend us to a friend or colleague?",
           "low": "0 = not at all likely", "high": "10 = extremely likely", "hint": "One click on a number is your answer."},
}


class PostPurchase(Scenario):
    key = "post_purchase"
    name_ja = "購入後ステップ配信"
    name_en = "Post-purchase steps"
    priority = 60
    default_delay = timedelta(hours=1)
    needs_items = False
    copy = {
        "ja": Copy("【{{ shop.name }}】{{ step.title }}", "{{ step.title }}", "{{ customer.name }} 様、{{ step.intro }}",
                   "ショップを見る", "ご購入の商品"),
        "en": Copy("[{{ shop.name }}] {{ step.title }}", "{{ step.title }}", "Dear {{ customer.name }}, {{ step.intro }}",
                   "Visit the shop",
                   "Your order"),
    }

    def audience(self, shop: Shop, now: datetime, delay: timedelta, periodic: bool = True) -> Audience:
        selects = []
        for step, days in STEPS.items():
            due = now - (delay if days == 0 else timedelta(days=days))
            selects.append(select(col(Order.customer_id).label("customer_id"), *trigger("post", col(Order.id), step))
                           .where(col(Order.shop_id) == shop.id, col(Order.customer_id).is_not(None),
                                  col(Order.canceled).is_(False), col(Order.ordered_at) <= due,
                                  col(Order.ordered_at) > due - CATCH_UP))
        return union_all(*selects)

    def contexts(self, session: Session, shop: Shop, messages: Sequence[Message]) -> dict[int, dict[str, Any]]:
        orders = {m.id or 0: m.trigger_ref or 0 for m in messages}
        rows = session.execute(select(col(OrderLine.order_id), col(OrderLine.product_id), col(Product.group_code))
                               .join(Product, col(Product.id) == col(OrderLine.product_id))
                               .where(col(OrderLine.order_id).in_(set(orders.values())))).all()
        stocked = in_stock_views(session, shop.id or 0, [p for _, p, _ in rows if p])
        groups: dict[int, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
        for order_id, product_id, group in rows:
            if product_id in stocked:
                groups[order_id][group or str(product_id)].append(stocked[product_id])
        lang = "ja" if shop.locale == "ja" else "en"
        out = {}
        for m in messages:
            step = m.trigger_step or "thanks"
            title, intro = STEP_COPY[lang][step if step in ("thanks", "survey") else "follow"]
            by_group = groups.get(orders[m.id or 0], {})
            out[m.id or 0] = {"step": {"name": step, "title": title, "intro": intro},
                              "items": [items[0] for items in by_group.values()],  # one product per group
                              "groups": sorted(by_group), "cta_url": shop.domain}
            if step == "survey":
                out[m.id or 0]["survey"] = SURVEY_COPY[lang]
        return out

    def sample_trigger(self, session: Session, shop: Shop, customer: Customer) -> Trigger:
        order = session.execute(select(col(Order.id)).where(col(Order.customer_id) == customer.id)
                                .order_by(col(Order.ordered_at).desc())).scalars().first()
        return Trigger("post", order or 0, "thanks")

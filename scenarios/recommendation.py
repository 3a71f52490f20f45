"""おすすめ商品(レコメンド)配信: 14 days after an order, and monthly for active customers: the
recommender's personal top-N, in stock, nothing they own unless a consumable is due again.

`due_items` (for copy that names them apart): the consumables due for repurchase, by the
customer's own predicted interval (recommender.repurchase); they also lead `items`."""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, union_all
from sqlmodel import Session, col

from plugin.storage.models import Customer, Message, Order, Shop
from recommender.serving import due_many, top_n_many
from scenarios.base import Audience, Copy, Scenario, product_view
from scenarios.sql import local_month, trigger

__all__ = ["Recommendation"]

AFTER_ORDER = timedelta(days=14)
CATCH_UP = timedelta(days=3)
ACTIVE = timedelta(days=90)


class Recommendation(Scenario):
    key = "recommendation"
    name_ja = "おすすめ商品(レコメンド)配信"
    name_en = "Personal recommendations"
    priority = 50
    copy = {
        "ja": Copy("【{{ shop.name }}】{{ customer.name }} 様へのおすすめ", "あなたへのおすすめ",
                   "{{ customer.name }} 様のご購入履歴から、おすすめの商品を選びました。", "ショップを見る", "おすすめ商品"),
        "en": Copy("[{{ shop.name }}] Picked for you", "Picked for you",
                   "Dear {{ customer.name }}, we picked these for you from what you like.", "Visit the shop",
                   "Recommended"),
    }

    def audience(self, shop: Shop, now: datetime, delay: timedelta, periodic: bool = True) -> Audience:
        after_order = select(col(Order.customer_id).label("customer_id"), *trigger("reco:order", col(Order.id))).where(
            col(Order.shop_id) == shop.id, col(Order.customer_id).is_not(None), col(Order.canceled).is_(False),
            col(Order.ordered_at) <= now - AFTER_ORDER, col(Order.ordered_at) > now - AFTER_ORDER - CATCH_UP)
        if not periodic:  # this month's mailing is written: only the after-order part remains
            return after_order
        monthly = select(col(Customer.id), *trigger("reco:month", None, local_month(now, shop.timezone))).where(
            col(Customer.shop_id) == shop.id, col(Customer.last_order_at) > now - ACTIVE)
        return union_all(after_order, monthly)

    def period(self, now: datetime, timezone: str) -> str | None:
        return local_month(now, timezone)

    def contexts(self, session: Session, shop: Shop, messages: Sequence[Message]) -> dict[int, dict[str, Any]]:
        customers = [m.customer_id for m in messages]
        picks = top_n_many(session, shop, customers, 4)
        due = due_many(session, shop, customers, 4)
        return {m.id or 0: {"items": [product_view(p) for p in picks.get(m.customer_id, [])],
                            "due_items": [product_view(p) for p in due.get(m.customer_id, [])], "cta_url": shop.domain}
                for m in messages}

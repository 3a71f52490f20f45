"""休眠顧客の掘り起こし: customers whose last order was 180 days ago (one message per lapse)."""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from plugin.storage.models import Customer, Message, Shop
from recommender.serving import top_n_many
from scenarios.base import Audience, Copy, Scenario, product_view
from scenarios.sql import day_text, trigger

__all__ = ["Winback"]

LAPSED = timedelta(days=180)
CATCH_UP = timedelta(days=30)  # customers lapsed long before the install are not blasted


class Winback(Scenario):
    key = "winback"
    name_ja = "休眠顧客の掘り起こし"
    name_en = "Win-back"
    priority = 20
    copy = {
        "ja": Copy("【{{ shop.name }}】お久しぶりです", "お久しぶりです",
                   "{{ customer.name }} 様、しばらくお見かけしませんでしたが、お元気ですか。新しい商品も入荷しています。",
                   "ショップをのぞいてみる", "今のおすすめ"),
        "en": Copy("[{{ shop.name }}] We miss you", "It has been a while",
                   "Dear {{ customer.name }}, it has been a while. Here is what is new.", "Visit the shop",
                   "Picked for you"),
    }

    def audience(self, shop: Shop, now: datetime, delay: timedelta, periodic: bool = True) -> Audience:
        return select(col(Customer.id).label("customer_id"), *trigger("winback", None, day_text(col(Customer.last_order_at)))).where(
            col(Customer.shop_id) == shop.id, col(Customer.last_order_at) <= now - LAPSED,
            col(Customer.last_order_at) > now - LAPSED - CATCH_UP)

    def contexts(self, session: Session, shop: Shop, messages: Sequence[Message]) -> dict[int, dict[str, Any]]:
        picks = top_n_many(session, shop, [m.customer_id for m in messages], 4)
        return {m.id or 0: {"items": [product_view(p) for p in picks.get(m.customer_id, [])], "cta_url": shop.domain}
                for m in messages}

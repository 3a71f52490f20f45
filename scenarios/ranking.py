"""ランキング通知: weekly (Monday 10:00 shop time) bestsellers of the last 7 days, overall and in
the customer's top category; sent to customers who ordered within the last year."""
from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import false, literal, select
from sqlmodel import Session, col

from plugin.storage.models import Customer, Message, Order, OrderLine, Product, Shop
from recommender.serving import ranking
from scenarios.base import Audience, Copy, Scenario, in_stock_views
from scenarios.sql import local_week, trigger

__all__ = ["Ranking"]

ACTIVE = timedelta(days=365)
SEND_AT = (0, 10)  # Monday, 10:00


def released(now: datetime, tz: str) -> bool:
    """This week's ranking goes out from Monday 10:00 shop time."""
    local = now.astimezone(ZoneInfo(tz))
    return (local.weekday(), local.hour) >= SEND_AT


class Ranking(Scenario):
    key = "ranking"
    name_ja = "ランキング通知"
    name_en = "Weekly bestsellers"
    priority = 40
    one_per_period = True
    copy = {
        "ja": Copy("【{{ shop.name }}】今週の人気ランキング", "今週の人気ランキング",
                   "{{ customer.name }} 様、この1週間でよく売れた商品をご紹介します。", "ランキングを見る", "総合ランキング"),
        "en": Copy("[{{ shop.name }}] This week's bestsellers", "This week's bestsellers",
                   "Dear {{ customer.name }}, here is what sold best this week.", "See more", "Top sellers"),
    }

    def audience(self, shop: Shop, now: datetime, delay: timedelta, periodic: bool = True) -> Audience:
        week = local_week(now, shop.timezone)
        when = literal(True) if periodic and released(now, shop.timezone) else false()
        return select(col(Customer.id).label("customer_id"), *trigger("ranking", None, week)).where(
            col(Customer.shop_id) == shop.id, col(Customer.last_order_at) > now - ACTIVE, when)

    def period(self, now: datetime, timezone: str) -> str | None:
        return local_week(now, timezone) if released(now, timezone) else None

    def contexts(self, session: Session, shop: Shop, messages: Sequence[Message]) -> dict[int, dict[str, Any]]:
        overall = ranking(session, shop, "7d") or ranking(session, shop, "30d")
        favourite = _top_categories(session, shop, [m.customer_id for m in messages])
        by_category = {c: ranking(session, shop, f"7d:{c}") for c in set(favourite.values())}
        stocked = in_stock_views(session, shop.id or 0, overall[:10] + [p for r in by_category.values() for p in r[:10]])
        out = {}
        for m in messages:
            category = favourite.get(m.customer_id)
            top = [stocked[p] | {"rank": i} for i, p in enumerate((x for x in overall if x in stocked), 1) if i <= 5]
            mine = [stocked[p] for p in by_category.get(category or "", []) if p in stocked][:3]
            out[m.id or 0] = {"items": top, "recommendations": mine, "category": category or "",
                              "cta_url": shop.domain}
        return out


def _top_categories(session: Session, shop: Shop, customer_ids: list[int]) -> dict[int, str]:
    rows = session.execute(select(col(Order.customer_id), col(Product.category))
                           .join(OrderLine, col(OrderLine.order_id) == col(Order.id))
                           .join(Product, col(Product.id) == col(OrderLine.product_id))
                           .where(col(Order.shop_id) == shop.id, col(Order.customer_id).in_(customer_ids))).all()
    counts: dict[int, Counter[str]] = defaultdict(Counter)
    for customer_id, category in rows:
        if category:
            counts[customer_id][category] += 1
    return {c: min(k, key=lambda cat: (-k[cat], cat)) for c, k in counts.items()}

"""閲覧リターゲティング: an identified customer viewed products and neither added to the cart nor
ordered in the next 2 hours; at most one such message per 7 days."""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import exists, func, select
from sqlmodel import Session, col

from plugin.storage.models import BrowseEvent, Cart, Message, Shop
from recommender.serving import similar_products
from scenarios.base import Audience, Copy, Scenario, in_stock_views
from scenarios.sql import ordered_since, trigger

__all__ = ["BrowseRetargeting"]

LOOKBACK = timedelta(hours=26)  # views older than this are stale; the 24 h margin covers missed ticks
COOLDOWN = timedelta(days=7)


class BrowseRetargeting(Scenario):
    key = "browse_retargeting"
    name_ja = "閲覧リターゲティング"
    name_en = "Browse retargeting"
    priority = 70
    default_delay = timedelta(hours=2)
    copy = {
        "ja": Copy("【{{ shop.name }}】ご覧になった商品はいかがでしたか", "ご覧になった商品",
                   "{{ customer.name }} 様、先日ご覧いただいた商品をお知らせします。", "ショップを見る", "ご覧になった商品"),
        "en": Copy("[{{ shop.name }}] Still thinking about these?", "Items you looked at",
                   "Dear {{ customer.name }}, here are the items you looked at recently.", "Visit the shop",
                   "You looked at"),
    }

    def audience(self, shop: Shop, now: datetime, delay: timedelta, periodic: bool = True) -> Audience:
        views = (select(col(BrowseEvent.customer_id), func.min(col(BrowseEvent.occurred_at)).label("first_view"),
                        func.max(col(BrowseEvent.occurred_at)).label("last_view"), func.max(col(BrowseEvent.id)).label("last_id"))
                 .where(col(BrowseEvent.shop_id) == shop.id, col(BrowseEvent.occurred_at) > now - LOOKBACK)
                 .group_by(col(BrowseEvent.customer_id)).subquery())
        carted = exists().where(col(Cart.shop_id) == shop.id, col(Cart.customer_id) == views.c.customer_id,
                                col(Cart.updated_at) >= views.c.first_view)
        recent = exists().where(col(Message.shop_id) == shop.id, col(Message.scenario_key) == self.key,
                                col(Message.customer_id) == views.c.customer_id, col(Message.scheduled_at) > now - COOLDOWN)
        return select(views.c.customer_id, *trigger("browse", views.c.last_id)).where(
            views.c.last_view <= now - delay, ~carted, ~recent,
            ~ordered_since(shop.id, views.c.customer_id, views.c.first_view))

    def contexts(self, session: Session, shop: Shop, messages: Sequence[Message]) -> dict[int, dict[str, Any]]:
        viewed: dict[int, list[int]] = defaultdict(list)
        rows = session.execute(select(col(BrowseEvent.customer_id), col(BrowseEvent.product_id), col(BrowseEvent.occurred_at))
                               .where(col(BrowseEvent.shop_id) == shop.id,
                                      col(BrowseEvent.customer_id).in_({m.customer_id for m in messages}))
                               .order_by(col(BrowseEvent.occurred_at).desc())).all()
        for customer_id, product_id, _ in rows:
            if product_id not in viewed[customer_id] and len(viewed[customer_id]) < 3:
                viewed[customer_id].append(product_id)
        similar = {p: similar_products(session, shop, p, 2) for ids in viewed.values() for p in ids}
        stocked = in_stock_views(session, shop.id or 0,
                                 [p for ids in viewed.values() for p in ids] + [s for v in similar.values() for s in v])
        out = {}
        for m in messages:
            mine = viewed.get(m.customer_id, [])
            extra = [s for p in mine for s in similar.get(p, []) if s not in mine]
            out[m.id or 0] = {"items": [stocked[p] for p in mine if p in stocked],
                              "recommendations": [stocked[p] for p in dict.fromkeys(extra) if p in stocked][:3],
                              "cta_url": shop.domain}
        return out

"""在庫トリガー(残りわずか・再入荷): an item a customer viewed (or left in a cart) falls to ≤ 2 in
stock, or comes back in stock; not sent to anyone who bought it since."""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, exists, or_, select, union_all
from sqlmodel import Session, col

from plugin.storage.models import (
    FEW_LEFT,
    BrowseEvent,
    Cart,
    CartLine,
    Customer,
    Message,
    Order,
    OrderLine,
    Product,
    Shop,
    Trigger,
)
from recommender.serving import similar_products
from scenarios.base import Audience, Copy, Scenario, in_stock_views
from scenarios.sql import day_text, trigger

__all__ = ["StockTrigger"]

FRESH = timedelta(days=3)  # how long after the stock change a message may still go out
INTEREST = timedelta(days=30)  # how far back a view counts as interest


class StockTrigger(Scenario):
    key = "stock_trigger"
    name_ja = "在庫トリガー(残りわずか・再入荷)"
    name_en = "Low stock and back in stock"
    priority = 85
    copy = {
        "ja": Copy("【{{ shop.name }}】{% if kind == 'restock' %}再入荷のお知らせ{% else %}残りわずかです{% endif %}",
                   "{% if kind == 'restock' %}お待たせしました、再入荷しました{% else %}ご覧の商品が残りわずかです{% endif %}",
                   "{{ customer.name }} 様がご覧になった商品の在庫状況をお知らせします。", "商品を見る", "対象の商品"),
        "en": Copy("[{{ shop.name }}] {% if kind == 'restock' %}Back in stock{% else %}Almost gone{% endif %}",
                   "{% if kind == 'restock' %}It is back in stock{% else %}Only a few left{% endif %}",
                   "Dear {{ customer.name }}, news about an item you looked at.", "See the item", "The item"),
    }

    def audience(self, shop: Shop, now: datetime, delay: timedelta, periodic: bool = True) -> Audience:
        def interested(since: Any) -> Any:
            viewed: Select[int, int] = (
                select(col(BrowseEvent.customer_id).label("customer_id"), col(BrowseEvent.product_id).label("product_id"))
                .where(col(BrowseEvent.shop_id) == shop.id, col(BrowseEvent.occurred_at) > since - INTEREST))
            carted = select(col(Cart.customer_id), col(CartLine.product_id)).join(CartLine, col(CartLine.cart_id) == col(Cart.id)) \
                .where(col(Cart.shop_id) == shop.id, col(CartLine.product_id).is_not(None))
            return union_all(viewed, carted).subquery()

        selects = []
        for kind, changed_at, level in (
            ("restock", col(Product.restocked_at), or_(col(Product.stock).is_(None), col(Product.stock) > 0)),
            ("low", col(Product.low_stock_at), and_(col(Product.stock) > 0, col(Product.stock) <= FEW_LEFT)),
        ):
            who = interested(now - FRESH)
            bought = exists().where(col(Order.shop_id) == shop.id, col(Order.customer_id) == who.c.customer_id,
                                    col(Order.ordered_at) >= now - FRESH - INTEREST, col(OrderLine.order_id) == col(Order.id),
                                    col(OrderLine.product_id) == col(Product.id))
            selects.append(select(who.c.customer_id, *trigger(kind, col(Product.id), day_text(changed_at)))
                           .distinct().join(Product, col(Product.id) == who.c.product_id)
                           .where(col(Product.shop_id) == shop.id, changed_at > now - FRESH, level,
                                  col(Product.visible).is_(True), ~bought))
        union = union_all(*selects).subquery()
        return select(union.c[0].label("customer_id"), union.c.trigger_kind, union.c.trigger_ref, union.c.trigger_step)

    def contexts(self, session: Session, shop: Shop, messages: Sequence[Message]) -> dict[int, dict[str, Any]]:
        product_of = {m.id or 0: m.trigger_ref or 0 for m in messages}
        similar = {p: similar_products(session, shop, p, 3) for p in set(product_of.values())}
        stocked = in_stock_views(session, shop.id or 0, [*product_of.values(), *[s for v in similar.values() for s in v]])
        out = {}
        for m in messages:
            product = product_of[m.id or 0]
            kind = m.trigger_kind
            item = stocked.get(product)
            if kind == "low" and item is not None and not item["few_left"]:
                item = None  # restocked since: "only a few left" is no longer true
            out[m.id or 0] = {"kind": kind, "items": [item] if item else [],
                              "recommendations": [stocked[s] for s in similar[product] if s in stocked][:2],
                              "cta_url": item["url"] if item else shop.domain}
        return out

    def sample_trigger(self, session: Session, shop: Shop, customer: Customer) -> Trigger:
        product = session.execute(select(col(Product.id)).where(col(Product.shop_id) == shop.id)).scalars().first()
        return Trigger("restock", product or 0, "preview")

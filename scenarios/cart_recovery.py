"""カゴ落ちリマインド: an identified cart idle ≥ 1 h, no order since, younger than 7 days;
a second reminder once the cart has been idle 24 h and the first was sent."""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import String, and_, cast, exists, select, union_all
from sqlmodel import Session, col

from plugin.storage.models import Cart, CartLine, Customer, Message, MessageStatus, Shop, Trigger
from recommender.serving import top_n_many
from scenarios.base import Audience, Copy, Scenario, in_stock_views, product_view, shop_link
from scenarios.sql import ordered_since, step_text, trigger

__all__ = ["CartRecovery"]

MAX_AGE = timedelta(days=7)
SECOND_AFTER = timedelta(hours=24)
RECOMMENDED = 3


class CartRecovery(Scenario):
    key = "cart_recovery"
    name_ja = "カゴ落ちリマインド"
    name_en = "Abandoned cart reminder"
    priority = 90
    default_delay = timedelta(hours=1)
    copy = {
        "ja": Copy("【{{ shop.name }}】カートに商品が残っています", "カートに商品が残っています",
                   "{{ customer.name }} 様、{{ shop.name }}をご利用いただきありがとうございます。"
                   "カートにお選びいただいた商品が残っています。", "カートを見る", "カートの商品"),
        "en": Copy("[{{ shop.name }}] You left something in your cart", "You left something in your cart",
                   "Dear {{ customer.name }}, thank you for visiting {{ shop.name }}. "
                   "The items you chose are still waiting in your cart.", "View your cart", "In your cart"),
    }

    def audience(self, shop: Shop, now: datetime, delay: timedelta, periodic: bool = True) -> Audience:
        has_items = exists().where(col(CartLine.cart_id) == col(Cart.id))
        live = and_(col(Cart.shop_id) == shop.id, col(Cart.updated_at) > now - MAX_AGE, has_items,
                    ~ordered_since(shop.id, Cart.customer_id, Cart.updated_at))
        first_step, second_step = _steps(col(Cart.revision))
        first = select(col(Cart.customer_id).label("customer_id"), *trigger("cart", col(Cart.id), first_step)
                       ).where(live, col(Cart.updated_at) <= now - delay)
        first_sent = exists().where(
            col(Message.shop_id) == shop.id, col(Message.scenario_key) == self.key, col(Message.customer_id) == col(Cart.customer_id),
            col(Message.trigger_kind) == "cart", col(Message.trigger_ref) == col(Cart.id), col(Message.trigger_step) == first_step,
            col(Message.status) == MessageStatus.sent)
        second = select(col(Cart.customer_id), *trigger("cart", col(Cart.id), second_step)).where(
            live, col(Cart.updated_at) <= now - SECOND_AFTER, first_sent)
        return union_all(first, second)

    def contexts(self, session: Session, shop: Shop, messages: Sequence[Message]) -> dict[int, dict[str, Any]]:
        carts = {m.id: m.trigger_ref or 0 for m in messages if m.id is not None}
        lines = session.execute(select(col(CartLine.cart_id), col(CartLine.product_id), col(CartLine.quantity))
                                .where(col(CartLine.cart_id).in_(set(carts.values())))
                                .order_by(col(CartLine.cart_id), col(CartLine.id))).all()
        stocked = in_stock_views(session, shop.id or 0, [p for _, p, _ in lines if p])
        items: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for cart_id, product_id, quantity in lines:
            if product_id in stocked:  # a sold-out item is dropped from the reminder
                items[cart_id].append({**stocked[product_id], "quantity": quantity})
        urls = dict(session.execute(select(col(Cart.id), col(Cart.recovery_url)).where(col(Cart.id).in_(set(carts.values())))).all())
        picks = top_n_many(session, shop, [m.customer_id for m in messages], RECOMMENDED,
                           exclude={m.customer_id: {i["id"] for i in items[carts[m.id or 0]]} for m in messages})
        return {
            mid: {"items": items[cart], "cta_url": shop_link(shop, urls.get(cart)),
                  "recommendations": [product_view(p) for p in picks.get(m.customer_id, [])]}
            for m in messages if (mid := m.id) is not None and (cart := carts[mid]) is not None
        }

    def still_wanted(self, session: Session, messages: Sequence[Message]) -> set[int]:
        """No order since the cart was last touched, the cart unchanged and still holding items."""
        steps = {m.id or 0: (m.trigger_ref, m.trigger_step) for m in messages}
        live = session.execute(
            select(col(Cart.id), *_steps(col(Cart.revision))).where(
                col(Cart.id).in_({cart_id for cart_id, _ in steps.values()}),
                exists().where(col(CartLine.cart_id) == col(Cart.id)),
                ~ordered_since(Cart.shop_id, Cart.customer_id, Cart.updated_at))
        ).all()
        current = {(cart_id, step) for cart_id, *now_steps in live for step in now_steps}
        return {mid for mid, trigger_of in steps.items() if trigger_of in current}

    def sample_trigger(self, session: Session, shop: Shop, customer: Customer) -> Trigger:
        cart = session.execute(select(Cart).where(col(Cart.customer_id) == customer.id)).scalars().first()
        return Trigger("cart", cart.id, str(cart.revision)) if cart else Trigger("cart", 0, "0")


def _steps(revision: Any) -> tuple[Any, Any]:
    """The trigger steps of a cart at this revision: its first reminder ("3") and its second ("3:2")."""
    return cast(revision, String), step_text(revision, "2")

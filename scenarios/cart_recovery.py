"""カゴ落ちリマインド: an identified cart idle ≥ 1 h, no order since, younger than 7 days;
a second reminder once the cart has been idle 24 h and the first was sent."""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, String, and_, cast, exists, select, union_all
from sqlmodel import Session

from plugin.storage.models import Cart, CartLine, Customer, Message, MessageStatus, Shop, Trigger
from recommender.serving import top_n_many
from scenarios.base import Copy, Scenario, in_stock_views, product_view
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

    def audience(self, shop: Shop, now: datetime, delay: timedelta, periodic: bool = True) -> Select[Any]:
        has_items = exists().where(CartLine.cart_id == Cart.id)
        live = and_(Cart.shop_id == shop.id, Cart.updated_at > now - MAX_AGE, has_items,  # type: ignore[operator]
                    ~ordered_since(shop.id, Cart.customer_id, Cart.updated_at))
        first_step, second_step = _steps(Cart.revision)
        first = select(Cart.customer_id.label("customer_id"), *trigger("cart", Cart.id, first_step)  # type: ignore[attr-defined]
                       ).where(live, Cart.updated_at <= now - delay)  # type: ignore[operator]
        first_sent = exists().where(
            Message.shop_id == shop.id, Message.scenario_key == self.key, Message.customer_id == Cart.customer_id,
            Message.trigger_kind == "cart", Message.trigger_ref == Cart.id, Message.trigger_step == first_step,
            Message.status == MessageStatus.sent)
        second = select(Cart.customer_id, *trigger("cart", Cart.id, second_step)).where(
            live, Cart.updated_at <= now - SECOND_AFTER, first_sent)  # type: ignore[operator]
        return union_all(first, second)  # type: ignore[return-value]

    def contexts(self, session: Session, shop: Shop, messages: Sequence[Message]) -> dict[int, dict[str, Any]]:
        carts = {m.id: m.trigger_ref or 0 for m in messages if m.id is not None}
        lines = session.execute(select(CartLine.cart_id, CartLine.product_id, CartLine.quantity)
                                .where(CartLine.cart_id.in_(set(carts.values())))  # type: ignore[attr-defined]
                                .order_by(CartLine.cart_id, CartLine.id)).all()
        stocked = in_stock_views(session, shop.id or 0, [p for _, p, _ in lines if p])
        items: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for cart_id, product_id, quantity in lines:
            if product_id in stocked:  # a sold-out item is dropped from the reminder
                items[cart_id].append({**stocked[product_id], "quantity": quantity})
        urls = dict(session.execute(select(Cart.id, Cart.recovery_url).where(Cart.id.in_(set(carts.values())))).all())  # type: ignore[union-attr]
        picks = top_n_many(session, shop, [m.customer_id for m in messages], RECOMMENDED,
                           exclude={m.customer_id: {i["id"] for i in items[carts[m.id or 0]]} for m in messages})
        return {
            mid: {"items": items[cart], "cta_url": urls.get(cart) or shop.domain,
                  "recommendations": [product_view(p) for p in picks.get(m.customer_id, [])]}
            for m in messages if (mid := m.id) is not None and (cart := carts[mid]) is not None
        }

    def still_wanted(self, session: Session, messages: Sequence[Message]) -> set[int]:
        """No order since the cart was last touched, the cart unchanged and still holding items."""
        steps = {m.id or 0: (m.trigger_ref, m.trigger_step) for m in messages}
        live = session.execute(
            select(Cart.id, *_steps(Cart.revision)).where(
                Cart.id.in_({cart_id for cart_id, _ in steps.values()}),  # type: ignore[union-attr]
                exists().where(CartLine.cart_id == Cart.id), ~ordered_since(Cart.shop_id, Cart.customer_id, Cart.updated_at))
        ).all()
        current = {(cart_id, step) for cart_id, *now_steps in live for step in now_steps}
        return {mid for mid, trigger_of in steps.items() if trigger_of in current}

    def sample_trigger(self, session: Session, shop: Shop, customer: Customer) -> Trigger:
        cart = session.execute(select(Cart).where(Cart.customer_id == customer.id)).scalars().first()
        return Trigger("cart", cart.id, str(cart.revision)) if cart else Trigger("cart", 0, "0")


def _steps(revision: Any) -> tuple[Any, Any]:
    """The trigger steps of a cart at this revision: its first reminder ("3") and its second ("3:2")."""
    return cast(revision, String), step_text(revision, "2")

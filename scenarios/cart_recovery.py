"""カゴ落ちリマインド: an identified cart idle ≥ 1 h, no order since, younger than 7 days."""
from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, select
from sqlmodel import Session

from plugin.models import Cart, CartLine, Customer, Message, Order, Product, Shop
from recommender.serving import top_n_many
from scenarios.base import Candidate, Scenario, product_view

__all__ = ["CartRecovery"]

MAX_AGE = timedelta(days=7)
RECOMMENDED = 3


def _ordered_since(shop_id: Any, customer_id: Any, since: Any) -> Any:
    return exists().where(
        Order.shop_id == shop_id, Order.customer_id == customer_id,
        Order.ordered_at >= since, Order.canceled.is_(False),  # type: ignore[attr-defined,operator]
    )


class CartRecovery(Scenario):
    key = "cart_recovery"
    name_ja = "カゴ落ちリマインド"
    name_en = "Abandoned cart reminder"
    priority = 90
    default_delay = timedelta(hours=1)

    def select(self, session: Session, shop: Shop, now: datetime, delay: timedelta) -> list[Candidate]:
        has_items = exists().where(CartLine.cart_id == Cart.id)
        idle_carts = (
            select(Cart.id, Cart.updated_at, Customer.id, Customer.email, Customer.name)
            .join(Customer, and_(Customer.id == Cart.customer_id, Customer.shop_id == Cart.shop_id))
            .where(
                Cart.shop_id == shop.id,
                Cart.updated_at <= now - delay,  # type: ignore[operator]
                Cart.updated_at > now - MAX_AGE,  # type: ignore[operator]
                has_items,
                ~_ordered_since(shop.id, Cart.customer_id, Cart.updated_at),
            )
        )
        return [
            Candidate(customer_id=cid, email=email, name=name, ref_id=cart_id,
                      trigger_key=f"cart:{cart_id}:{int(updated.timestamp())}")
            for cart_id, updated, cid, email, name in session.execute(idle_carts)
        ]

    def contexts(self, session: Session, shop: Shop, candidates: list[Candidate]) -> dict[str, dict[str, Any]]:
        cart_ids = [c.ref_id for c in candidates]
        lines = session.execute(
            select(CartLine.cart_id, CartLine.quantity, Product.name, Product.price, Product.stock,
                   Product.url, Product.image_url)
            .join(Product, Product.id == CartLine.product_id)
            .where(CartLine.cart_id.in_(cart_ids), Product.visible.is_(True))  # type: ignore[union-attr,attr-defined]
            .order_by(CartLine.cart_id, CartLine.id)
        )
        items: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for cart_id, qty, name, price, stock, url, image in lines:
            items[cart_id].append({"name": name, "price": price, "quantity": qty, "url": url,
                                   "image_url": image, "in_stock": stock is None or stock > 0,
                                   "few_left": stock is not None and 0 < stock <= 2})
        urls = dict(session.execute(select(Cart.id, Cart.recovery_url).where(Cart.id.in_(cart_ids))).all())  # type: ignore[union-attr]
        in_cart = self._cart_products(session, cart_ids)
        customer_of = {c.customer_id: c.ref_id or 0 for c in candidates}
        picks = top_n_many(session, shop, list(customer_of), RECOMMENDED,
                           exclude={cid: in_cart.get(cart, set()) for cid, cart in customer_of.items()})
        return {
            c.trigger_key: {"items": items.get(c.ref_id or 0, []), "cart_url": urls.get(c.ref_id) or shop.domain,
                            "recommendations": [product_view(p) for p in picks.get(c.customer_id, [])]}
            for c in candidates
        }

    @staticmethod
    def _cart_products(session: Session, cart_ids: list[int | None]) -> dict[int, set[int]]:
        products: dict[int, set[int]] = defaultdict(set)
        for cart_id, product_id in session.execute(select(CartLine.cart_id, CartLine.product_id).where(
                CartLine.cart_id.in_(cart_ids), CartLine.product_id.is_not(None))):  # type: ignore[union-attr]
            products[cart_id].add(product_id)
        return products

    def still_wanted(self, session: Session, message: Message) -> bool:
        """No order since the cart was last touched, and the cart still holds items."""
        cart_id = int(message.trigger_key.split(":")[1])
        cart = session.get(Cart, cart_id)
        if cart is None or not session.execute(select(CartLine.id).where(CartLine.cart_id == cart_id)).first():
            return False
        ordered = _ordered_since(message.shop_id, message.customer_id, cart.updated_at)
        return not session.execute(select(ordered)).scalar()

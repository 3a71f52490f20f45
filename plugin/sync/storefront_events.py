"""Storefront events (basket changes, product views), as a platform's event parser yields them."""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlmodel import Session, col

from connectors.storefront import StorefrontEvent
from plugin.storage.models import BrowseEvent, Cart, CartLine, Customer, Product, Shop
from plugin.storage.upsert import table_of, upsert

__all__ = ["record_event", "UnknownReference"]

# Beacons may be queued by the browser; older or future stamps are clamped into this window.
MAX_EVENT_AGE = timedelta(days=7)


class UnknownReference(LookupError):
    """The event names a customer or product Okaeri has not synced (yet)."""


def _when(event: StorefrontEvent, now: datetime) -> datetime:
    if event.occurred_at is None:
        return now
    return min(max(event.occurred_at, now - MAX_EVENT_AGE), now)


def record_event(session: Session, shop: Shop, event: StorefrontEvent, now: datetime) -> str:
    """Store one event; returns what was done. Raises UnknownReference for unsynced ids."""
    customer_id = session.execute(select(col(Customer.id)).where(
        col(Customer.shop_id) == shop.id, col(Customer.external_id) == event.customer_id)).scalar_one_or_none()
    if customer_id is None:
        raise UnknownReference(f"customer {event.customer_id} is not known (not synced yet?)")
    when = _when(event, now)
    if event.kind == "product_view":
        product_id = _product_ids(session, shop, [event.product_id or ""]).get(event.product_id or "")
        if product_id is None:
            raise UnknownReference(f"product {event.product_id} is not known (not synced yet?)")
        session.add(BrowseEvent(shop_id=shop.id or 0, customer_id=customer_id, product_id=product_id, occurred_at=when))
        return "view recorded"
    return _replace_basket(session, shop, customer_id, event, when)


def _product_ids(session: Session, shop: Shop, external_ids: list[str]) -> dict[str, int]:
    return dict(session.execute(select(col(Product.external_id), col(Product.id)).where(
        col(Product.shop_id) == shop.id, col(Product.external_id).in_(external_ids))).all())


def _replace_basket(session: Session, shop: Shop, customer_id: int, event: StorefrontEvent, when: datetime) -> str:
    key = f"customer:{event.customer_id}"
    cart = session.execute(select(Cart).where(col(Cart.shop_id) == shop.id, col(Cart.external_key) == key)
                           ).scalar_one_or_none()
    wanted = sorted((i.product_id, i.quantity) for i in event.items)
    if cart is not None:
        current = sorted(tuple(r) for r in session.execute(select(col(CartLine.product_external_id), col(CartLine.quantity))
                                         .where(col(CartLine.cart_id) == cart.id)).all())
        if current == wanted:
            return "basket unchanged"  # a page view with the same basket is not new activity
    total = sum(i.price * i.quantity for i in event.items)
    carts = table_of(Cart)
    upsert(session, carts, [{
        "shop_id": shop.id, "external_key": key, "customer_id": customer_id, "recovery_url": event.cart_url,
        "total": total, "currency": shop.currency, "created_at": when, "updated_at": when, "revision": 1}],
        ["shop_id", "external_key"], ["recovery_url", "total", "updated_at"],
        extra={"revision": carts.c.revision + 1})
    cart_id = session.execute(select(col(Cart.id)).where(col(Cart.shop_id) == shop.id, col(Cart.external_key) == key)
                              ).scalar_one()
    session.execute(delete(CartLine).where(col(CartLine.cart_id) == cart_id))
    products = _product_ids(session, shop, [i.product_id for i in event.items])
    for item in event.items:
        session.add(CartLine(shop_id=shop.id or 0, cart_id=cart_id, product_id=products.get(item.product_id),
                             product_external_id=item.product_id, quantity=item.quantity, unit_price=item.price))
    return "basket emptied" if not event.items else "basket recorded"

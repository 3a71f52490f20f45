"""Checkouts the platform itself reports (a verified hook or its API): carts with `source="platform"`.

The cart is the checkout's (key `checkout:{id}`), its buyer a synced customer (stored from the
checkout when sync has not brought them yet) or, for a guest checkout, the shop's member with that
email or else a guest row keyed by it (`plugin.sync.guests`), its link the platform's own recovery URL, and its
`updated_at` the checkout's last change, so an older delivery is recognised and skipped. A new
revision (a new reminder) only when the items change. A completed checkout keeps its cart without
lines: nothing is left to remind of, and a late older update cannot bring the lines back.
Storefront events never change these carts (plugin.sync.storefront_events).
"""
from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import delete, select
from sqlmodel import Session, col

from connectors.base import CheckoutRecord, CustomerRecord
from plugin.storage.models import Cart, CartLine, Customer, Product, Shop
from plugin.storage.upsert import table_of, upsert
from plugin.sync.guests import members_by_email
from plugin.sync.store import store_records

__all__ = ["store_checkout", "PLATFORM_CART"]

PLATFORM_CART = "platform"  # Cart.source


def _recovery_url(record: CheckoutRecord, fallback: str) -> str:
    url = record.recovery_url.strip()
    return url if url.startswith("https://") and len(url) <= 1000 and url.isprintable() else fallback


def store_checkout(session: Session, shop: Shop, record: CheckoutRecord, now: datetime, *, cart_url: str,
                   points_expire_months: int | None = None) -> str:
    """Write one checkout as its buyer's platform cart; returns what was done (the caller commits)."""
    shop_id = shop.id or 0
    if record.customer is None:
        return "checkout ignored: no identified buyer"
    customer_id = _buyer(session, shop_id, record.customer, now, points_expire_months)
    key = f"checkout:{record.external_id}"
    cart = session.execute(select(Cart).where(col(Cart.shop_id) == shop_id, col(Cart.external_key) == key)
                           ).scalar_one_or_none()
    if cart is not None and _aware(cart.updated_at) > record.updated_at:
        return "checkout ignored: older than stored"
    products = dict(session.execute(select(col(Product.external_id), col(Product.id)).where(
        col(Product.shop_id) == shop_id, col(Product.external_id).in_([ln.product_external_id for ln in record.lines]))
    ).tuples().all())
    wanted = [] if record.completed else sorted((ln.product_external_id, ln.quantity) for ln in record.lines)
    current = [] if cart is None else sorted(tuple(r) for r in session.execute(
        select(col(CartLine.product_external_id), col(CartLine.quantity)).where(col(CartLine.cart_id) == cart.id)).all())
    carts = table_of(Cart)
    changed = current != wanted
    upsert(session, carts, [{
        "shop_id": shop_id, "external_key": key, "customer_id": customer_id,
        "recovery_url": _recovery_url(record, cart_url), "total": record.total, "currency": record.currency,
        "source": PLATFORM_CART, "visitor_id": "", "created_at": record.updated_at, "updated_at": record.updated_at,
        "revision": 1}], ["shop_id", "external_key"], ["customer_id", "recovery_url", "total", "currency", "updated_at"],
        extra={"revision": carts.c.revision + (1 if changed else 0)})
    if not changed:
        return "checkout unchanged"
    cart_id = session.execute(select(col(Cart.id)).where(col(Cart.shop_id) == shop_id, col(Cart.external_key) == key)
                              ).scalar_one()
    session.execute(delete(CartLine).where(col(CartLine.cart_id) == cart_id))
    for external_id, quantity in wanted:
        session.add(CartLine(shop_id=shop_id, cart_id=cart_id, product_id=products.get(external_id),
                             product_external_id=external_id, quantity=quantity))
    return "checkout completed" if record.completed else "checkout recorded"


def _buyer(session: Session, shop_id: int, buyer: CustomerRecord, now: datetime, points_expire_months: int | None) -> int:
    """The customer row a checkout's cart belongs to, stored first if the shop has none yet.

    A member's row is sync's to keep (a checkout only brings one sync has not). A guest's email
    that a member of the shop has is that member's: their own consent stands, whatever the guest
    checkbox said; other guests' rows follow their latest checkout (an opt-in ticked at checkout)."""
    if buyer.is_guest:
        member = members_by_email(session, shop_id, [buyer.email]).get(buyer.email.strip().lower())
        if member is not None:
            return member
    held = session.execute(select(col(Customer.id), col(Customer.updated_at)).where(
        col(Customer.shop_id) == shop_id, col(Customer.external_id) == buyer.external_id)).first()
    if held is None or (buyer.is_guest and _aware(held[1]) <= buyer.updated_at):
        store_records(session, shop_id, "customers", [buyer], now,
                      points_expire_months=points_expire_months, keep_points=True)
    return int(session.execute(select(col(Customer.id)).where(
        col(Customer.shop_id) == shop_id, col(Customer.external_id) == buyer.external_id)).scalar_one())


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)

"""Storefront events (basket changes, product views), as a platform's event parser yields them.

An event is a stranger's bytes: it may only point at the shop's own synced data. What it changes
depends on who it speaks for (`plugin.sync.visitors`): nothing when its visitor speaks for nobody;
a visitor the page alone vouched for changes only the cart it wrote itself; a visitor proven by
Okaeri's signed link keeps the customer's storefront cart. Carts the platform itself reports
(`source="platform"`) are never changed by events. Prices and the cart's link are the shop's own.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import bindparam, delete, func, insert, select
from sqlalchemy.orm import aliased
from sqlmodel import Session, col

from connectors.storefront import StorefrontEvent
from plugin.storage.models import BrowseEvent, Cart, CartLine, Customer, Product, Proof, Shop, VisitorBinding
from plugin.storage.upsert import table_of, upsert
from plugin.sync.visitors import Speaker, speaker_for

__all__ = ["record_event", "record_events", "STOREFRONT"]

STOREFRONT = "storefront"  # Cart.source of carts kept from basket events
# Beacons may be queued by the browser; older or future stamps are clamped into this window.
MAX_EVENT_AGE = timedelta(days=7)


def _when(event: StorefrontEvent, now: datetime) -> datetime:
    if event.occurred_at is None:
        return now
    return min(max(event.occurred_at, now - MAX_EVENT_AGE), now)


def record_event(session: Session, shop: Shop, event: StorefrontEvent, now: datetime, *, cart_url: str,
                 proven_customer_id: int | None = None) -> str:
    """Store what this event may change; return what was done (for logs, never for the answer).

    Parameters:
      cart_url: the shop's cart link, from the platform and the shop's synced URL.
      proven_customer_id: the customer a valid signed proof in the event names, if any.
    """
    speaker = speaker_for(session, shop, event, proven_customer_id, now)
    if speaker is None:
        return "ignored: speaks for nobody"
    when = _when(event, now)
    if event.kind == "product_view":
        product = _products(session, shop, [event.product_id or ""]).get(event.product_id or "")
        if product is None:
            return "ignored: unknown product"
        session.add(BrowseEvent(shop_id=shop.id or 0, customer_id=speaker.customer_id, product_id=product[0], occurred_at=when))
        return "view recorded"
    return _record_basket(session, shop, speaker, event, when, cart_url)


def _products(session: Session, shop: Shop, external_ids: list[str]) -> dict[str, tuple[int, int]]:
    """Synced products by external id: (id, current price)."""
    rows = session.execute(select(col(Product.external_id), col(Product.id), col(Product.price)).where(
        col(Product.shop_id) == shop.id, col(Product.external_id).in_(external_ids))).all()
    return {external: (pid, price) for external, pid, price in rows}


def _record_basket(session: Session, shop: Shop, speaker: Speaker, event: StorefrontEvent, when: datetime,
                   cart_url: str) -> str:
    key = f"customer:{speaker.external_id}"
    cart = session.execute(select(Cart).where(col(Cart.shop_id) == shop.id, col(Cart.external_key) == key)
                           ).scalar_one_or_none()
    if cart is not None and cart.source != STOREFRONT:
        return "ignored: the platform's own cart"
    if cart is not None and speaker.proof == Proof.page and cart.visitor_id != event.visitor_id:
        return "ignored: another visitor's cart"
    products = _products(session, shop, [i.product_id for i in event.items])
    wanted = sorted((i.product_id, i.quantity) for i in event.items if i.product_id in products)
    if event.items and not wanted:
        return "ignored: no synced product"  # not an empty basket: items Okaeri does not know (yet)
    current = [] if cart is None else sorted(tuple(r) for r in session.execute(
        select(col(CartLine.product_external_id), col(CartLine.quantity)).where(col(CartLine.cart_id) == cart.id)).all())
    if current == wanted:
        return "basket unchanged"  # a page view with the same basket is not new activity
    carts = table_of(Cart)
    upsert(session, carts, [{
        "shop_id": shop.id, "external_key": key, "customer_id": speaker.customer_id, "recovery_url": cart_url,
        "total": sum(products[pid][1] * quantity for pid, quantity in wanted), "currency": shop.currency,
        "source": STOREFRONT, "visitor_id": event.visitor_id, "created_at": when, "updated_at": when, "revision": 1}],
        ["shop_id", "external_key"], ["recovery_url", "total", "visitor_id", "updated_at"],
        extra={"revision": carts.c.revision + 1})
    cart_id = session.execute(select(col(Cart.id)).where(col(Cart.shop_id) == shop.id, col(Cart.external_key) == key)
                              ).scalar_one()
    session.execute(delete(CartLine).where(col(CartLine.cart_id) == cart_id))
    for pid, quantity in wanted:
        product_id, price = products[pid]
        session.add(CartLine(shop_id=shop.id or 0, cart_id=cart_id, product_id=product_id, product_external_id=pid,
                             quantity=quantity, unit_price=price))
    return "basket emptied" if not wanted else "basket recorded"


# The batch path's lookups, built once: a visitor's binding, and whether it is the first binding
# of its customer (a page binding speaks only then), for every visitor of a batch in one query.
_first = aliased(VisitorBinding)
_BINDINGS = (
    select(col(VisitorBinding.visitor_id), col(VisitorBinding.customer_id), col(Customer.external_id),
           col(VisitorBinding.proof), col(VisitorBinding.id),
           select(func.min(col(_first.id))).where(col(_first.shop_id) == col(VisitorBinding.shop_id),
                                                  col(_first.customer_id) == col(VisitorBinding.customer_id))
           .scalar_subquery())
    .join(Customer, col(Customer.id) == col(VisitorBinding.customer_id))
    .where(col(VisitorBinding.shop_id) == bindparam("shop"),
           col(VisitorBinding.visitor_id).in_(bindparam("visitors", expanding=True))))
_PRODUCTS = select(col(Product.external_id), col(Product.id), col(Product.price)).where(
    col(Product.shop_id) == bindparam("shop"), col(Product.external_id).in_(bindparam("ids", expanding=True)))


def record_events(session: Session, shop: Shop, events: list[tuple[StorefrontEvent, int | None]], now: datetime, *,
                  cart_url: str) -> list[str]:
    """`record_event` for many events of one shop, in order, in the caller's transaction; returns
    each one's outcome.

    The common case — a product view from a visitor already bound, with no new proof — costs two
    queries for the whole batch (the visitors' bindings, the products) and one INSERT of every
    view; anything else (a proof, a first claim, a basket, a visitor an earlier event of this batch
    rebound) takes `record_event`'s own path, so the identity rules are the same either way.
    """
    views = [e for e, proven in events if e.kind == "product_view" and proven is None and e.product_id]
    bound = _speakers(session, shop, {e.visitor_id for e in views})
    products = {external: pid for external, pid, _ in session.execute(
        _PRODUCTS, {"shop": shop.id, "ids": sorted({e.product_id or "" for e in views})})} if views else {}
    outcomes: list[str] = []
    rows: list[dict[str, object]] = []
    stale = False  # an event took record_event's path: bindings may have changed (rebound, or unbound by a proof)
    for position, (event, proven) in enumerate(events):
        if stale and event.kind == "product_view" and proven is None:
            bound = _speakers(session, shop, {e.visitor_id for e, p in events[position:] if p is None})
            stale = False
        speaker = bound.get(event.visitor_id)
        if event.kind != "product_view" or proven is not None or not event.product_id or speaker is None:
            outcomes.append(record_event(session, shop, event, now, cart_url=cart_url, proven_customer_id=proven))
            stale = True
            continue
        logged_out = "" if speaker.proof == Proof.link else None
        if event.customer_id not in (logged_out, speaker.external_id):
            outcomes.append("ignored: speaks for nobody")
            continue
        product_id = products.get(event.product_id)
        if product_id is None:
            outcomes.append("ignored: unknown product")
            continue
        rows.append({"shop_id": shop.id, "customer_id": speaker.customer_id, "product_id": product_id,
                     "occurred_at": _when(event, now)})
        outcomes.append("view recorded")
    if rows:
        session.execute(insert(table_of(BrowseEvent)), rows)
    return outcomes


def _speakers(session: Session, shop: Shop, visitors: set[str]) -> dict[str, Speaker]:
    """The visitors' bindings that speak (`visitors._current`, for many visitors in one query)."""
    if not visitors:
        return {}
    found: dict[str, Speaker] = {}
    for visitor, customer_id, external_id, proof, row_id, first_id in session.execute(
            _BINDINGS, {"shop": shop.id, "visitors": sorted(visitors)}):
        if proof == Proof.link or row_id == first_id:
            found[visitor] = Speaker(customer_id, external_id, Proof(proof))
    return found

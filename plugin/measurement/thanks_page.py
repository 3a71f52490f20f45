"""Purchases the storefront's thanks page reported, matched to the synced orders they name.

The thanks page runs in the buyer's browser, so its event only *points at* an order: nothing is
counted until sync brings an order with that id. A matched order becomes a conversion when the
visitor arrived by Okaeri's signed mail link (the proof names the customer) and that customer
clicked a message within the attribution window before the order — the same last-click rule as
`attribute_orders`, and conversions stay unique per order, so an order the sync brings later (or
again) is never counted twice.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import and_, func, select, update
from sqlmodel import Session, col

from plugin.clock import as_utc
from plugin.measurement.links import ATTRIBUTION_WINDOW
from plugin.storage.models import Conversion, Customer, Message, MessageEvent, Order, Shop, ThanksPageOrder
from plugin.storage.upsert import insert_ignore, table_of

__all__ = ["record_thanks_page", "match_thanks_page_orders", "REPORT_SLACK"]

# A thanks page is shown right after checkout: a report far from the order's time is not about it.
REPORT_SLACK = timedelta(days=1)


def record_thanks_page(session: Session, shop: Shop, order_external_id: str, visitor_id: str,
                       proven_customer_id: int | None, now: datetime) -> str:
    """Keep one report per order id (a reloaded thanks page adds nothing); match it at once if the
    order is already synced. A report without Okaeri's proof could attribute nothing (a logged-in
    buyer's order is attributed by its customer anyway), so it is not kept. Returns what was done, for logs."""
    if proven_customer_id is None:
        return "ignored: purchase without a mail link's proof"
    inserted = insert_ignore(session, table_of(ThanksPageOrder), [{
        "shop_id": shop.id, "order_external_id": order_external_id, "visitor_id": visitor_id,
        "customer_id": proven_customer_id, "reported_at": now}], ["shop_id", "order_external_id"])
    if not inserted:
        return "ignored: order already reported"
    return "thanks recorded, matched" if match_thanks_page_orders(session, shop.id or 0, now) else "thanks recorded"


def match_thanks_page_orders(session: Session, shop_id: int, now: datetime) -> int:
    """Link unmatched reports to the synced orders they name, and attribute those a proven visitor
    bought; returns how many reports were matched."""
    pairs = session.execute(
        select(col(ThanksPageOrder.id), col(ThanksPageOrder.customer_id), col(ThanksPageOrder.reported_at),
               col(Order.id), col(Order.customer_id), col(Order.ordered_at), col(Order.total), col(Order.canceled))
        .join(Order, and_(col(Order.shop_id) == ThanksPageOrder.shop_id,
                          col(Order.external_id) == ThanksPageOrder.order_external_id))
        .where(col(ThanksPageOrder.shop_id) == shop_id, col(ThanksPageOrder.order_id).is_(None))).all()
    conversions = []
    for report_id, proven, reported_at, order_id, buyer, ordered_at, total, canceled in pairs:
        session.execute(update(ThanksPageOrder).where(col(ThanksPageOrder.id) == report_id)
                        .values(order_id=order_id, matched_at=now))
        if proven is None or canceled or abs(as_utc(reported_at) - as_utc(ordered_at)) > REPORT_SLACK:
            continue
        if not _same_buyer(session, proven, buyer):
            continue
        click = _last_click(session, shop_id, proven, ordered_at)
        if click is not None:
            conversions.append({"shop_id": shop_id, "order_id": order_id, "message_id": click[0],
                                "scenario_key": click[1], "revenue": total, "ordered_at": ordered_at})
    insert_ignore(session, table_of(Conversion), conversions, ["order_id"])  # at most once per order, ever
    return len(pairs)


def _same_buyer(session: Session, proven: int, buyer: int | None) -> bool:
    """The order is the proven customer's: their own, or a guest order under the same address."""
    if buyer is None or buyer == proven:
        return buyer == proven
    emails = dict(session.execute(select(col(Customer.id), func.lower(col(Customer.email)))
                                  .where(col(Customer.id).in_([proven, buyer]))).all())
    return bool(emails.get(proven)) and emails.get(proven) == emails.get(buyer)


def _last_click(session: Session, shop_id: int, customer_id: int, ordered_at: datetime) -> tuple[int, str] | None:
    """The customer's last message click before the order, within the attribution window."""
    row = session.execute(
        select(col(Message.id), col(Message.scenario_key), col(MessageEvent.occurred_at))
        .join(MessageEvent, and_(col(MessageEvent.message_id) == Message.id, col(MessageEvent.kind) == "click"))
        .where(col(Message.shop_id) == shop_id, col(Message.customer_id) == customer_id,
               col(MessageEvent.occurred_at) <= ordered_at)
        .order_by(col(MessageEvent.occurred_at).desc(), col(MessageEvent.id).desc()).limit(1)).first()
    if row is None or as_utc(ordered_at) - as_utc(row[2]) > ATTRIBUTION_WINDOW:
        return None
    return int(row[0]), str(row[1])

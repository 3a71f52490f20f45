"""Rows the platform no longer lists: closed, not removed.

ColorMe has no deletion feed: a deleted product or customer simply drops out of its lists (and
GET /products/{id} answers 404). So a walk of a whole listing (a first or full sync, or a
reconciliation that found the counts apart) closes the rows it did not meet: `deleted_at` is set
and a product stops being visible, so it is never recommended or shown in a mail and a customer
gets no message (plugin.gates.consent); orders and their lines keep pointing at them. A row the
platform lists again is open again (the sync's upsert clears `deleted_at`).
"""
from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import update
from sqlmodel import Session, col, select

from plugin.storage.models import Customer, Product

__all__ = ["DELETABLE", "close_missing"]

log = logging.getLogger("okaeri.sync")
DELETABLE = ("customers", "products")
CHUNK = 500


def close_missing(session: Session, shop_id: int, resource: str, listed: set[str], now: datetime) -> int:
    """Close the shop's open rows of `resource` whose external id is not in `listed`; returns how many."""
    model: type[Customer | Product] = Customer if resource == "customers" else Product
    query = select(col(model.id), col(model.external_id)).where(
        col(model.shop_id) == shop_id, col(model.deleted_at).is_(None))
    if model is Customer:  # guests are keyed by email, not listed by id
        query = query.where(col(Customer.is_guest).is_(False))
    held = session.execute(query).tuples().all()
    if not listed and held:  # an empty answer for a shop we hold rows of reads as a fault, not as a wipe-out
        log.warning("okaeri.sync.empty-listing", extra={"shop_id": shop_id, "resource": resource, "held": len(held)})
        return 0
    gone = [row_id for row_id, external_id in held if external_id not in listed]
    values: dict[str, object] = {"deleted_at": now} if model is Customer else {"deleted_at": now, "visible": False}
    for start in range(0, len(gone), CHUNK):
        session.execute(update(model).where(col(model.id).in_(gone[start:start + CHUNK])).values(**values))
    if gone:
        log.info("okaeri.sync.closed", extra={"shop_id": shop_id, "resource": resource, "count": len(gone)})
    session.commit()
    return len(gone)

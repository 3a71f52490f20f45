"""Store what a connector yields: batched upserts, cursors per resource, install revocation."""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict
from datetime import datetime, timedelta
from itertools import islice
from typing import Any, TypeVar

from sqlalchemy import and_, case, delete, func, or_, select, update
from sqlmodel import Session

from connectors.base import CustomerRecord, OrderRecord, ProductRecord, ShopConnector
from connectors.errors import Unauthorized
from plugin.storage.consent import record_consent
from plugin.storage.models import FEW_LEFT, Customer, InstallState, Order, OrderLine, Product, ProductGroupRule, Shop, SyncState
from plugin.storage.upsert import upsert

__all__ = ["sync_shop", "RESOURCES", "HISTORY", "Progress"]

log = logging.getLogger("okaeri.sync")
RESOURCES = ("customers", "products", "orders")
HISTORY = timedelta(days=400)  # a first sync reads a year of orders, plus a margin
BATCH = 500
POINTS_VALID = timedelta(days=365)
Progress = Callable[[str, int, int | None], None]
T = TypeVar("T")


def _batches(items: Iterable[T], size: int = BATCH) -> Iterator[list[T]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def sync_shop(
    session: Session,
    shop: Shop,
    connector: ShopConnector,
    now: datetime,
    *,
    full: bool = False,
    progress: Progress | None = None,
) -> dict[str, int]:
    """Sync customers, products and orders of one shop; return counts per resource."""
    counts: dict[str, int] = {}
    try:
        for resource in RESOURCES:
            counts[resource] = _sync_resource(session, shop, connector, resource, now, full, progress)
    except Unauthorized as exc:
        session.rollback()
        shop.state, shop.state_message = InstallState.revoked, f"token refused by platform: {exc}"
        session.add(shop)
        session.commit()
        raise
    return counts


def _sync_resource(
    session: Session,
    shop: Shop,
    connector: ShopConnector,
    resource: str,
    now: datetime,
    full: bool,
    progress: Progress | None,
) -> int:
    state = session.exec(  # type: ignore[call-overload]
        select(SyncState).where(SyncState.shop_id == shop.id, SyncState.resource == resource)
    ).scalar_one_or_none() or SyncState(shop_id=shop.id, resource=resource)
    since = None if full else state.cursor
    total = connector.count(resource, since)
    records: Iterable[object]
    if resource == "customers":
        records, store = connector.iter_customers(since), _store_customers
    elif resource == "products":
        records, store = connector.iter_products(since), _store_products
    else:
        records, store = connector.iter_orders(since, now - HISTORY), _store_orders
    done, cursor = 0, state.cursor
    for batch in _batches(records):
        store(session, shop.id, batch, now)  # type: ignore[arg-type]
        done += len(batch)
        newest = max(r.updated_at for r in batch)  # type: ignore[attr-defined]
        cursor = newest if cursor is None or newest > cursor else cursor
        session.commit()
        if progress:
            progress(resource, done, total)
    state.cursor, state.last_run_at, state.last_count, state.last_error = cursor, now, done, ""
    session.add(state)
    session.commit()
    log.info("okaeri.sync.resource", extra={"shop_id": shop.id, "resource": resource, "count": done})
    return done


def _store_customers(session: Session, shop_id: int, batch: list[CustomerRecord], now: datetime) -> None:
    before = dict(session.execute(select(Customer.external_id, Customer.email_consent).where(
        Customer.shop_id == shop_id, Customer.external_id.in_([r.external_id for r in batch]))).all())  # type: ignore[attr-defined]
    for r in batch:  # consent records: when and how each address opted in or out
        if r.email and before.get(r.external_id) != r.email_consent:
            record_consent(session, shop_id, "email", r.email, r.email_consent, "platform sync", now)
    rows = [
        {**asdict(r), "shop_id": shop_id, "created_at": now,
         "email_consent_at": r.updated_at if r.email_consent else None}
        for r in batch
    ]
    update = ["email", "name", "email_consent", "points_balance", "updated_at", "line_user_id"]
    upsert(session, Customer.__table__, rows, ["shop_id", "external_id"], update)  # type: ignore[arg-type]


def _store_products(session: Session, shop_id: int, batch: list[ProductRecord], now: datetime) -> None:
    rows = [{**asdict(r), "shop_id": shop_id} for r in batch]
    update = [k for k in rows[0] if k not in ("shop_id", "external_id")]
    old = Product.__table__.c  # type: ignore[attr-defined]

    def stock_transitions(new: Any) -> dict[str, Any]:
        """Remember when stock came back from 0, or fell to the few-left level (stock triggers)."""
        restocked = case((and_(old.stock == 0, or_(new.stock.is_(None), new.stock > 0)), now), else_=old.restocked_at)
        low = case((and_(or_(old.stock.is_(None), old.stock > FEW_LEFT), new.stock > 0, new.stock <= FEW_LEFT), now),
                   else_=old.low_stock_at)
        return {"restocked_at": restocked, "low_stock_at": low}

    upsert(session, Product.__table__, rows, ["shop_id", "external_id"], update, extra=stock_transitions)  # type: ignore[arg-type]
    _apply_group_rules(session, shop_id)


def _ids(session: Session, model: type, shop_id: int, external_ids: set[str]) -> dict[str, int]:
    if not external_ids:
        return {}
    rows = session.execute(
        select(model.external_id, model.id).where(  # type: ignore[attr-defined]
            model.shop_id == shop_id, model.external_id.in_(external_ids)  # type: ignore[attr-defined]
        )
    )
    return {ext: id_ for ext, id_ in rows}


def _store_orders(session: Session, shop_id: int, batch: list[OrderRecord], now: datetime) -> None:
    customers = _ids(session, Customer, shop_id, {r.customer_external_id for r in batch if r.customer_external_id})
    products = _ids(session, Product, shop_id, {ln.product_external_id for r in batch for ln in r.lines})
    rows = [
        {"shop_id": shop_id, "external_id": r.external_id, "customer_id": customers.get(r.customer_external_id or ""),
         "ordered_at": r.ordered_at, "updated_at": r.updated_at, "total": r.total,
         "currency": r.currency, "canceled": r.canceled}
        for r in batch
    ]
    update = ["customer_id", "ordered_at", "updated_at", "total", "currency", "canceled"]
    upsert(session, Order.__table__, rows, ["shop_id", "external_id"], update)  # type: ignore[arg-type]
    orders = _ids(session, Order, shop_id, {r.external_id for r in batch})
    session.execute(delete(OrderLine).where(OrderLine.order_id.in_(orders.values())))  # type: ignore[attr-defined]
    lines = [
        {"shop_id": shop_id, "order_id": orders[r.external_id], "product_id": products.get(ln.product_external_id),
         "product_external_id": ln.product_external_id, "name": ln.name,
         "unit_price": ln.unit_price, "quantity": ln.quantity}
        for r in batch for ln in r.lines
    ]
    if lines:
        session.execute(OrderLine.__table__.insert(), lines)  # type: ignore[attr-defined]
    _refresh_recency(session, shop_id, {c for c in customers.values()})


def _refresh_recency(session: Session, shop_id: int, customer_ids: set[int]) -> None:
    """Last order time per customer, and when their points expire (a year after it, ColorMe's default)."""
    if not customer_ids:
        return
    last = session.execute(select(Order.customer_id, func.max(Order.ordered_at)).where(
        Order.shop_id == shop_id, Order.customer_id.in_(customer_ids), Order.canceled.is_(False))  # type: ignore[union-attr,attr-defined]
        .group_by(Order.customer_id)).all()
    if last:
        session.execute(update(Customer), [{"id": cid, "last_order_at": at, "points_expire_at": at + POINTS_VALID}
                                           for cid, at in last])


def _apply_group_rules(session: Session, shop_id: int) -> None:
    """A merchant's grouping rules win over the platform's codes (one UPDATE per rule set)."""
    rules = session.execute(select(ProductGroupRule.product_code, ProductGroupRule.group_code)
                            .where(ProductGroupRule.shop_id == shop_id)).all()
    for code, group in rules:
        session.execute(update(Product).where(Product.shop_id == shop_id, Product.code == code)  # type: ignore[arg-type]
                        .values(group_code=group))

"""Store what a connector yields: batched upserts, cursors per resource, install revocation."""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict
from datetime import datetime, timedelta
from itertools import islice
from typing import TypeVar

from sqlalchemy import delete, select
from sqlmodel import Session

from connectors.base import CustomerRecord, OrderRecord, ProductRecord, ShopConnector
from connectors.errors import Unauthorized
from plugin.models import Customer, InstallState, Order, OrderLine, Product, Shop, SyncState

__all__ = ["sync_shop", "RESOURCES", "HISTORY", "Progress"]

log = logging.getLogger("okaeri.sync")
RESOURCES = ("customers", "products", "orders")
HISTORY = timedelta(days=400)  # a first sync reads a year of orders, plus a margin
BATCH = 500
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
    from plugin.upsert import upsert

    rows = [
        {**asdict(r), "shop_id": shop_id, "created_at": now,
         "email_consent_at": r.updated_at if r.email_consent else None}
        for r in batch
    ]
    update = ["email", "name", "email_consent", "points_balance", "updated_at", "line_user_id"]
    upsert(session, Customer.__table__, rows, ["shop_id", "external_id"], update)  # type: ignore[arg-type]


def _store_products(session: Session, shop_id: int, batch: list[ProductRecord], now: datetime) -> None:
    from plugin.upsert import upsert

    rows = [{**asdict(r), "shop_id": shop_id} for r in batch]
    update = [k for k in rows[0] if k not in ("shop_id", "external_id")]
    upsert(session, Product.__table__, rows, ["shop_id", "external_id"], update)  # type: ignore[arg-type]


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
    from plugin.upsert import upsert

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

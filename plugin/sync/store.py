"""Store what a connector yields: batched upserts, cursors per resource, install revocation."""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import fields as dc_fields
from datetime import datetime, timedelta
from functools import partial
from itertools import islice
from typing import Any, TypeVar

from sqlalchemy import and_, case, func, or_, select
from sqlmodel import Session, col

from connectors.base import CustomerRecord, OrderRecord, ProductRecord, ShopConnector, Window, guest_external_id
from connectors.errors import Unauthorized
from plugin.storage.consent import record_consents
from plugin.storage.models import FEW_LEFT, Customer, InstallState, Order, OrderLine, Product, Shop, SyncState
from plugin.storage.point_expiry import refresh_point_expiry
from plugin.storage.product_groups import apply_grouping_rules
from plugin.storage.upsert import (
    among,
    delete_by_keys,
    driver_execute,
    ids_by_key,
    insert_rows,
    table_of,
    upsert,
    upsert_ids,
    values_by_key,
)
from plugin.sync.deletions import DELETABLE, close_missing
from plugin.sync.guests import adopt_guest_rows, latest_per_key, members_by_email, without_members

__all__ = ["sync_shop", "resync", "mark_revoked", "held_counts", "store_records", "RESOURCES", "HISTORY", "Progress"]

log = logging.getLogger("okaeri.sync")
RESOURCES = ("customers", "products", "orders")
HISTORY = timedelta(days=400)  # a first sync reads a year of orders, plus a margin
BATCH = 500
Progress = Callable[[str, int, int | None], None]
Store = Callable[[Session, int, list[Any], datetime], None]
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
    points_expire_months: int | None = None,
) -> dict[str, int]:
    """Sync customers, products and orders of one shop; return counts per resource.

    `points_expire_months` is the shop's rule when its platform's data has no expiry date: points
    expire that many months after a customer's last order. None: the connector's records carry the date.
    """
    counts: dict[str, int] = {}
    try:
        for resource in RESOURCES:
            counts[resource] = _sync_resource(session, shop, connector, resource, now, full, progress,
                                              points_expire_months)
    except Unauthorized as exc:
        mark_revoked(session, shop, exc)
        raise
    return counts


def mark_revoked(session: Session, shop: Shop, exc: Unauthorized) -> None:
    """The platform refused the shop's token: the install is revoked (sending stops)."""
    session.rollback()
    shop.state, shop.state_message = InstallState.revoked, f"token refused by platform: {exc}"
    session.add(shop)
    session.commit()


def resync(session: Session, shop: Shop, connector: ShopConnector, resource: str, now: datetime, *,
           points_expire_months: int | None = None) -> int:
    """Re-read one resource completely (closing what the platform no longer lists); returns how many."""
    return _sync_resource(session, shop, connector, resource, now, True, None, points_expire_months)


def _sync_resource(
    session: Session,
    shop: Shop,
    connector: ShopConnector,
    resource: str,
    now: datetime,
    full: bool,
    progress: Progress | None,
    points_expire_months: int | None,
) -> int:
    """Write a resource window by window; its cursor moves only once a window is fully written.

    A walk of everything (a first or full sync) also closes the rows the platform no longer lists.
    An interrupted first sync of orders resumes after its last written window, and its cursor
    then starts where that first sync began (so what changed meanwhile in earlier windows is read).
    """
    state = session.execute(
        select(SyncState).where(col(SyncState.shop_id) == shop.id, col(SyncState.resource) == resource)
    ).scalar_one_or_none() or SyncState(shop_id=shop.id or 0, resource=resource)
    since = None if full else state.cursor
    if since is None and (full or state.backfill_started_at is None):
        state.backfill_started_at, state.backfill_until = now, None  # a walk of everything starts here
    started = now if since is not None else state.backfill_started_at or now
    total = connector.count(resource, since)
    windows, store = _source(connector, resource, since, now - HISTORY, state.backfill_until, points_expire_months)
    done, seen = 0, set[str]()
    newest: datetime | None = None
    for window in windows:
        for batch in _batches(window.records):
            store(session, shop.id or 0, batch, now)
            done += len(batch)
            batch_newest = max(r.updated_at for r in batch)
            newest = batch_newest if newest is None else max(newest, batch_newest)
            if resource in DELETABLE:  # only what a complete listing may close (orders are never closed: memory stays flat)
                seen.update(r.external_id for r in batch)
            session.commit()
            if progress:
                progress(resource, done, total)
        if since is None and window.until is not None:  # this window is written: resume after it
            state.backfill_until = window.until
            session.add(state)
            session.commit()
    if since is None and resource in DELETABLE:
        close_missing(session, shop.id or 0, resource, seen, now)  # a complete listing: what it lacks is gone
    if newest is not None:  # never past the walk's start: a row changed while we paged is read again next time
        state.cursor = min(newest, started)
    elif since is None:  # an empty listing read through: changes count from its start
        state.cursor = started
    state.last_run_at, state.last_count, state.last_error = now, done, ""
    state.backfill_started_at = state.backfill_until = None
    session.add(state)
    session.commit()
    log.info("okaeri.sync.resource", extra={"shop_id": shop.id, "resource": resource, "count": done})
    return done


def _source(connector: ShopConnector, resource: str, since: datetime | None, history_start: datetime,
            resume_from: datetime | None, points_expire_months: int | None) -> tuple[Iterable[Window[Any]], Store]:
    """The resource's records from the connector in windows, and how a batch of them is stored."""
    if resource == "customers":
        return ([Window(connector.iter_customers(since))],
                partial(_store_customers, points_expire_months=points_expire_months))
    if resource == "products":
        return [Window(connector.iter_products(since))], _store_products
    start = max(history_start, resume_from) if resume_from and since is None else history_start
    return (connector.iter_order_windows(since, start),
            partial(_store_orders, points_expire_months=points_expire_months))


def store_records(session: Session, shop_id: int, resource: str, records: Iterable[Any], now: datetime, *,
                  points_expire_months: int | None = None, keep_points: bool = False) -> int:
    """Write records from outside a sync walk (a platform hook's, a bulk file's) in batches, as a
    sync writes them; no cursor moves and nothing is closed. `keep_points`: the records carry no
    point balance or expiry, so the stored ones stay. Returns how many; the caller commits."""
    stores: dict[str, Store] = {
        "customers": partial(_store_customers, points_expire_months=points_expire_months, keep_points=keep_points),
        "products": _store_products,
        "orders": partial(_store_orders, points_expire_months=points_expire_months),
    }
    done = 0
    for batch in _batches(records):
        stores[resource](session, shop_id, batch, now)
        done += len(batch)
    return done


def _fields(record: Any) -> dict[str, Any]:
    """A record's fields as a row's values: a shallow copy (its values are plain; `asdict` deep-copied
    every one of them, a tenth of a first sync)."""
    return {f.name: getattr(record, f.name) for f in dc_fields(record)}


def _store_customers(session: Session, shop_id: int, batch: list[CustomerRecord], now: datetime, *,
                     points_expire_months: int | None, keep_points: bool = False) -> None:
    expiry_from_platform = points_expire_months is None
    members = [r for r in batch if not r.is_guest]
    adopted = adopt_guest_rows(session, shop_id, members, now)
    batch = latest_per_key([*members, *without_members(session, shop_id, [r for r in batch if r.is_guest])])
    if not batch:
        return
    before = values_by_key(session, table_of(Customer), shop_id, (r.external_id for r in batch), "email_consent")
    record_consents(session, shop_id, "email", [  # when and how each address opted in or out (SQLite's 1 == True)
        (r.email, r.email_consent) for r in batch if r.email and before.get(r.external_id) != r.email_consent],
        "platform sync", now)
    rows = [
        {**_fields(r), "shop_id": shop_id, "created_at": now, "deleted_at": None,
         "email_consent_at": r.updated_at if r.email_consent else None}
        for r in batch
    ]
    update = ["email", "name", "email_consent", "points_balance", "updated_at", "line_user_id", "is_guest",
              "deleted_at"]
    if keep_points:
        update.remove("points_balance")
    elif expiry_from_platform:
        update.append("points_expire_at")
    else:  # the date follows from orders (_refresh_recency): a customer row must not reset it
        rows = [{k: v for k, v in row.items() if k != "points_expire_at"} for row in rows]
    upsert(session, table_of(Customer), rows, ["shop_id", "external_id"], update)
    if adopted:
        _refresh_recency(session, shop_id, adopted, points_expire_months)


def _store_products(session: Session, shop_id: int, batch: list[ProductRecord], now: datetime) -> None:
    rows = [{**_fields(r), "platform_group_code": r.group_code, "shop_id": shop_id, "deleted_at": None} for r in batch]
    update = [k for k in rows[0] if k not in ("shop_id", "external_id")]
    old = table_of(Product).c

    def stock_transitions(new: Any) -> dict[str, Any]:
        """Remember when stock came back from 0, or fell to the few-left level (stock triggers)."""
        restocked = case((and_(old.stock == 0, or_(new.stock.is_(None), new.stock > 0)), now), else_=old.restocked_at)
        low = case((and_(or_(old.stock.is_(None), old.stock > FEW_LEFT), new.stock > 0, new.stock <= FEW_LEFT), now),
                   else_=old.low_stock_at)
        return {"restocked_at": restocked, "low_stock_at": low}

    upsert(session, table_of(Product), rows, ["shop_id", "external_id"], update, extra=stock_transitions)
    apply_grouping_rules(session, shop_id, [r.external_id for r in batch])  # a merchant's rules win


def _ids(session: Session, model: type[Customer | Product | Order], shop_id: int,
         external_ids: set[str]) -> dict[str, int]:
    return ids_by_key(session, table_of(model), shop_id, external_ids)


ORDER_COLUMNS = ("shop_id", "external_id", "customer_id", "ordered_at", "updated_at", "total", "currency", "canceled")
LINE_COLUMNS = ("shop_id", "order_id", "product_id", "product_external_id", "name", "unit_price", "quantity")


def _store_orders(session: Session, shop_id: int, batch: list[OrderRecord], now: datetime, *,
                  points_expire_months: int | None) -> None:
    """Upsert the orders (their ids come back from the upsert itself), replace their lines, refresh
    their buyers' recency: rows travel as value tuples, the batch's largest cost being these rows.
    An order stored with a newer `updated_at` (a webhook that landed during a first sync) is left
    as it is, lines and all: an older copy never overwrites newer data."""
    guests = [r.guest for r in batch if r.guest]
    if guests:  # buyers without an account: customers keyed by email (plugin.sync.guests)
        _store_customers(session, shop_id, guests, now, points_expire_months=points_expire_months)
    customers = _ids(session, Customer, shop_id, {r.customer_external_id for r in batch if r.customer_external_id})
    customers.update({guest_external_id(email): member for email, member in
                      members_by_email(session, shop_id, (g.email for g in guests)).items()})
    products = _ids(session, Product, shop_id, {ln.product_external_id for r in batch for ln in r.lines})
    batch, buyer, product = latest_orders(batch), customers.get, products.get
    orders = upsert_ids(session, table_of(Order), ORDER_COLUMNS, [
        (shop_id, r.external_id, buyer(r.customer_external_id or ""), r.ordered_at, r.updated_at, r.total,
         r.currency, r.canceled) for r in batch], ["shop_id", "external_id"], ORDER_COLUMNS[2:], newer="updated_at")
    delete_by_keys(session, table_of(OrderLine), "order_id", orders.values())
    insert_rows(session, table_of(OrderLine), LINE_COLUMNS, [
        (shop_id, orders[r.external_id], product(ln.product_external_id), ln.product_external_id, ln.name,
         ln.unit_price, ln.quantity) for r in batch if r.external_id in orders for ln in r.lines])
    _refresh_recency(session, shop_id, set(customers.values()), points_expire_months)


def latest_orders(batch: list[OrderRecord]) -> list[OrderRecord]:
    """One record per order, the last given: one upsert statement may not touch a row twice (and the
    lines of an order listed twice are written once)."""
    if len({r.external_id for r in batch}) == len(batch):
        return batch
    return list({r.external_id: r for r in batch}.values())


def _refresh_recency(session: Session, shop_id: int, customer_ids: set[int], points_expire_months: int | None) -> None:
    """Last order time per customer, and, by the platform's rule if it has one, when their points expire.

    One UPDATE per batch (customers with no live order keep theirs), the ids as one array parameter.
    The unary plus keeps the shop test off the (shop_id, external_id) index: SQLite otherwise walked
    every customer of the shop in that index per batch (growing with the shop) instead of finding
    the batch's few by their ids."""
    if not customer_ids:
        return
    mark, tail, ids = among(session, list(customer_ids))
    live = (f"FROM orders WHERE orders.shop_id = {mark} AND orders.customer_id = customers.id"
            " AND NOT orders.canceled")
    updated = [int(row[0]) for row in driver_execute(
        session, f"UPDATE customers SET last_order_at = (SELECT max(orders.ordered_at) {live}) "
        f"WHERE +customers.shop_id = {mark} AND customers.id {tail} AND EXISTS (SELECT 1 {live}) RETURNING id",
        (shop_id, shop_id, ids, shop_id))]
    if updated and points_expire_months is not None:
        refresh_point_expiry(session, shop_id, points_expire_months, updated)


def held_counts(session: Session, shop_id: int) -> dict[str, int]:
    """How many customers, products and orders of the shop Okaeri holds (not what the last sync changed)."""
    models: dict[str, type[Customer | Product | Order]] = {"customers": Customer, "products": Product, "orders": Order}
    return {resource: session.execute(select(func.count()).where(col(model.shop_id) == shop_id)).scalar_one()
            for resource, model in models.items()}

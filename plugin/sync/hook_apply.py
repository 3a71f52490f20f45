"""Applying a stored webhook delivery: what the platform's descriptor reads from it, written through
the sync store, the personal-data module or a data export.

Deliveries come late, twice and out of order: a record older (by `updated_at`) than the stored one
is skipped, so a retried old payload never overwrites newer data; a product deletion carries the
delivery's time, so an update from before it does not bring the product back. The body is emptied
once applied (the row stays as the dedupe key). Compliance requests are applied whatever the
install's state (a shop's erasure request arrives after it uninstalled); data hooks only while active.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import delete, or_, select, update
from sqlmodel import Session, col

from connectors.base import CustomerRecord, OrderRecord, ProductRecord, guest_external_id
from connectors.errors import BadResponse
from connectors.platform import DataRequest, Platform, RecordsChanged, Redact
from plugin.runtime import Runtime
from plugin.storage.models import Customer, DataExport, HookDelivery, InstallState, Order, Product, Shop
from plugin.storage.personal_data import export_customer, redact_customers, redact_shop
from plugin.storage.upsert import table_of
from plugin.sync.checkouts import store_checkout
from plugin.sync.run import open_connector
from plugin.sync.store import store_records

__all__ = ["apply_delivery", "apply_records", "answer_data_request", "erase", "newer_than_stored"]

log = logging.getLogger("okaeri.hooks")
R = TypeVar("R", CustomerRecord, ProductRecord, OrderRecord)


def apply_delivery(runtime: Runtime, delivery_id: int) -> str:
    """Apply one stored delivery once; returns what it did (kept on the row as its outcome).

    Whatever the platform must be asked (products whose stock moved) is read first, outside any
    lock; then the shop's row is held for the writes (`_hold_shop`), so two workers applying an
    older and a newer delivery of one record cannot both pass the staleness check before either
    writes, and one delivery is never applied twice."""
    now = runtime.clock.now()
    with runtime.sessions() as session:
        row = session.get(HookDelivery, delivery_id)
        if row is None or row.applied_at is not None:
            return "already applied"
        shop = session.get(Shop, row.shop_id)
        assert shop is not None  # a foreign key
        shop_id, platform = shop.id or 0, runtime.platforms.get(shop.platform)
        try:
            effect = platform.read_hook(row.topic, row.body.encode(), shop_url=shop.domain, currency=shop.currency)
            reread = _reread_products(runtime, shop, effect)
        except BadResponse as exc:  # the platform's payload is not what it documents: kept, not retried
            effect, reread, refused = None, [], f"refused: {exc}"[:500]
        session.rollback()  # the hold below must be its transaction's first statement (SQLite)
        _hold_shop(session, shop_id)
        row = session.get(HookDelivery, delivery_id, populate_existing=True)
        if row is None or row.applied_at is not None:  # another worker applied it while this one read
            session.rollback()
            return "already applied"
        shop = session.get(Shop, shop_id, populate_existing=True)
        assert shop is not None
        if effect is None:
            outcome = refused
        else:
            outcome = _apply(session, platform, shop, effect, reread, row.triggered_at or now, now)
        row.applied_at, row.outcome, row.body = now, outcome[:500], ""
        session.add(row)
        session.commit()
    log.info("okaeri.hooks.applied", extra={"shop_id": row.shop_id, "topic": row.topic, "outcome": outcome})
    return outcome


def _hold_shop(session: Session, shop_id: int) -> None:
    """Hold the shop's row until the transaction ends: a row lock on PostgreSQL, the write lock on
    SQLite (taken by the transaction's first statement, so nothing it reads can go stale)."""
    shops = table_of(Shop)
    session.execute(shops.update().where(shops.c.id == shop_id).values(id=shops.c.id))


def _reread_products(runtime: Runtime, shop: Shop, effect: RecordsChanged | DataRequest | Redact) -> list[ProductRecord]:
    """Products the hook names without their state (a stock move carries no product `updated_at`),
    read from the platform as they are now; none for other hooks or an install that is not active."""
    if not isinstance(effect, RecordsChanged) or not effect.stale_products or shop.state != InstallState.active:
        return []
    connector = open_connector(runtime, shop)
    try:
        return list(connector.iter_products_by_reference(effect.stale_products))
    finally:
        connector.close()


def _apply(session: Session, platform: Platform[Any], shop: Shop, effect: RecordsChanged | DataRequest | Redact,
           reread: list[ProductRecord], when: datetime, now: datetime) -> str:
    if isinstance(effect, DataRequest):
        return answer_data_request(session, shop, effect, now)
    if isinstance(effect, Redact):
        return erase(session, shop, effect, now)
    if shop.state != InstallState.active:
        return f"ignored: install {shop.state}"
    fresh = f"products re-read {store_records(session, shop.id or 0, 'products', reread, now)}" if reread else ""
    months = shop.points_expiry_months if platform.points_expire_after is not None else None
    done = apply_records(session, shop, effect, when, now, points_expire_months=months,
                         cart_url=platform.cart_url(shop.domain))
    return f"{fresh}; {done}" if fresh else done


def apply_records(session: Session, shop: Shop, effect: RecordsChanged, when: datetime, now: datetime, *,
                  points_expire_months: int | None = None, cart_url: str = "") -> str:
    """Write a hook's records, skipping any older than what is stored; the caller commits."""
    shop_id = shop.id or 0
    done: list[str] = []
    for resource, model, records in (("customers", Customer, effect.customers), ("products", Product, effect.products),
                                     ("orders", Order, effect.orders)):
        fresh: Sequence[Any] = newer_than_stored(session, model, shop_id, list(records))
        if records:
            store_records(session, shop_id, resource, fresh, now, points_expire_months=points_expire_months,
                          keep_points=resource == "customers" and not effect.customer_points_known)
            done.append(f"{resource} {len(fresh)}/{len(records)}")
    if effect.deleted_products:
        gone = update(Product).where(col(Product.shop_id) == shop_id,
                                     col(Product.external_id).in_(effect.deleted_products), col(Product.updated_at) <= when)
        session.execute(gone.values(deleted_at=now, visible=False, updated_at=when))
        done.append(f"products deleted {len(effect.deleted_products)}")
    for checkout in effect.checkouts:
        done.append(store_checkout(session, shop, checkout, now, cart_url=cart_url, points_expire_months=points_expire_months))
    return "; ".join(done) or "nothing to store"


def newer_than_stored(session: Session, model: type[Customer | Product | Order], shop_id: int,
                      records: list[R]) -> list[R]:
    """The records not older than the stored row of the same external id (the newest per id)."""
    latest: dict[str, R] = {}
    for record in records:
        if record.external_id not in latest or latest[record.external_id].updated_at <= record.updated_at:
            latest[record.external_id] = record
    if not latest:
        return []
    stored = dict(session.execute(select(col(model.external_id), col(model.updated_at)).where(
        col(model.shop_id) == shop_id, col(model.external_id).in_(list(latest)))).tuples().all())
    return [r for r in latest.values() if r.external_id not in stored or _aware(stored[r.external_id]) <= r.updated_at]


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _people(session: Session, shop_id: int, external_id: str, email: str) -> list[int]:
    """The shop's customer rows a request names: by the platform's id, and by email (guest rows too)."""
    wanted = []
    if external_id:
        wanted.append(col(Customer.external_id) == external_id)
    if email.strip():
        wanted += [col(Customer.email) == email.strip(), col(Customer.external_id) == guest_external_id(email)]
    if not wanted:
        return []
    return list(session.execute(select(col(Customer.id)).where(col(Customer.shop_id) == shop_id, or_(*wanted))).scalars())


def answer_data_request(session: Session, shop: Shop, request: DataRequest, now: datetime) -> str:
    """Write the export the merchant downloads from the console (also when Okaeri holds nothing)."""
    shop_id = shop.id or 0
    people = _people(session, shop_id, request.customer_external_id, request.email)
    exports = [data for cid in people if (data := export_customer(session, shop_id, cid)) is not None]
    body = {"shop": shop.external_id, "request_id": request.request_id, "customer_id": request.customer_external_id,
            "generated_at": now.isoformat(), "holds_data": bool(exports), "records": exports}
    session.add(DataExport(shop_id=shop_id, customer_id=people[0] if people else None,
                           customer_ref=request.customer_external_id[:255], request_ref=request.request_id[:128],
                           body=json.dumps(body, ensure_ascii=False, indent=1), created_at=now))
    return f"export written ({len(exports)} customer rows)"


def erase(session: Session, shop: Shop, request: Redact, now: datetime) -> str:
    """Delete personal data for real (plugin.storage.personal_data), and the exports that hold it."""
    shop_id = shop.id or 0
    if request.whole_shop:
        report = redact_shop(session, shop_id, now)
        session.execute(delete(DataExport).where(col(DataExport.shop_id) == shop_id))
        session.execute(update(HookDelivery).where(col(HookDelivery.shop_id) == shop_id).values(body=""))
        return f"shop erased ({report.customers} customers, {report.messages} messages)"
    people = _people(session, shop_id, request.customer_external_id, request.email)
    report = redact_customers(session, shop_id, people, now)
    exports = delete(DataExport).where(col(DataExport.shop_id) == shop_id)
    refs: list[Any] = [col(DataExport.customer_id).in_(people)]
    if request.customer_external_id:
        refs.append(col(DataExport.customer_ref) == request.customer_external_id)
    session.execute(exports.where(or_(*refs)))
    return f"customer erased ({report.customers} rows, {report.messages} messages, {report.cancelled} cancelled)"

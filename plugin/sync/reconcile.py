"""The daily reconciliation: compare what Okaeri holds with the platform's own counts, repair drift.

Polling can drift (a row missed while a list moved, a deletion no list reports), so once a day per
shop the scheduler runs this pass: one `limit=1` request per resource gives the platform's
`meta.total`, compared with the local rows that should match it:
- customers: members (not guests) not deleted;
- products: not deleted;
- orders: placed since the history start and before the orders cursor (later ones are the next
  sync's), canceled ones included, as ColorMe lists them.
A resource whose counts disagree is walked again completely (`plugin.sync.store.resync`): missing
rows are written, rows the platform no longer lists are closed (plugin.sync.deletions). Every
finding is logged (`okaeri.sync.reconciled`) and the pass is remembered as the shop's
`reconciliation` sync state, which the scheduler reads to run it once a day.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlmodel import Session, col

from connectors.base import ShopConnector
from connectors.errors import Unauthorized
from plugin.runtime import Runtime
from plugin.storage.models import Customer, InstallState, Order, Product, Shop, SyncState
from plugin.sync.run import UnknownShop, open_connector
from plugin.sync.store import HISTORY, mark_revoked, resync

__all__ = ["Drift", "reconcile", "reconcile_shop", "shops_due_for_reconciliation", "RECONCILIATION", "RECONCILE_EVERY"]

log = logging.getLogger("okaeri.sync")
RECONCILIATION = "reconciliation"  # the SyncState resource that remembers the last pass
RECONCILE_EVERY = timedelta(hours=24)


@dataclass(frozen=True)
class Drift:
    """One resource's counts before the pass, and after its repair (equal to before when none)."""

    resource: str
    platform: int
    local: int
    repaired: bool = False
    local_after: int | None = None

    @property
    def agrees(self) -> bool:
        return self.platform == self.local


def reconcile_shop(runtime: Runtime, shop_id: int) -> list[Drift]:
    """Reconcile one active shop with its platform now (the actor's and the CLI's way in)."""
    with runtime.sessions() as session:
        shop = session.get(Shop, shop_id)
        if shop is None or shop.state != InstallState.active:
            raise UnknownShop(f"shop {shop_id} is not installed and active")
        derived = runtime.platforms.get(shop.platform).points_expire_after is not None
        connector = open_connector(runtime, shop)
        try:
            return reconcile(session, shop, connector, runtime.clock.now(),
                             points_expire_months=shop.points_expiry_months if derived else None)
        except Unauthorized as exc:
            mark_revoked(session, shop, exc)
            raise
        finally:
            connector.close()


def reconcile(session: Session, shop: Shop, connector: ShopConnector, now: datetime, *,
              points_expire_months: int | None = None) -> list[Drift]:
    """Compare counts per resource and re-walk each resource that drifted; returns the findings."""
    placed_from = (now - HISTORY).replace(microsecond=0)
    placed_until = _orders_cursor(session, shop) or now
    totals = connector.platform_totals(placed_from, placed_until)
    findings = []
    for resource, platform in totals.items():
        local = _local_count(session, shop, resource, placed_from, placed_until)
        drift = Drift(resource, platform, local)
        if not drift.agrees:
            resync(session, shop, connector, resource, now, points_expire_months=points_expire_months)
            drift = Drift(resource, platform, local, True,
                          _local_count(session, shop, resource, placed_from, placed_until))
        log.info("okaeri.sync.reconciled", extra={"shop_id": shop.id, "resource": resource, "platform": platform,
                                                  "local": local, "repaired": drift.repaired,
                                                  "local_after": drift.local_after})
        findings.append(drift)
    _remember(session, shop, now, findings)
    return findings


def _orders_cursor(session: Session, shop: Shop) -> datetime | None:
    cursor = session.execute(select(col(SyncState.cursor)).where(
        col(SyncState.shop_id) == shop.id, col(SyncState.resource) == "orders")).scalar_one_or_none()
    return cursor.replace(microsecond=0) if cursor else None


def _local_count(session: Session, shop: Shop, resource: str, placed_from: datetime, placed_until: datetime) -> int:
    if resource == "customers":
        where = [col(Customer.shop_id) == shop.id, col(Customer.is_guest).is_(False), col(Customer.deleted_at).is_(None)]
    elif resource == "products":
        where = [col(Product.shop_id) == shop.id, col(Product.deleted_at).is_(None)]
    else:
        where = [col(Order.shop_id) == shop.id, col(Order.ordered_at) >= placed_from,
                 col(Order.ordered_at) < placed_until.replace(microsecond=0)]
    return int(session.execute(select(func.count()).where(*where)).scalar_one())


def _remember(session: Session, shop: Shop, now: datetime, findings: list[Drift]) -> None:
    state = session.execute(select(SyncState).where(
        col(SyncState.shop_id) == shop.id, col(SyncState.resource) == RECONCILIATION)).scalar_one_or_none()
    state = state or SyncState(shop_id=shop.id or 0, resource=RECONCILIATION)
    drifted = [f for f in findings if not f.agrees]
    state.last_run_at, state.last_count = now, len(drifted)
    state.last_error = "; ".join(f"{f.resource}: platform {f.platform}, local {f.local} → {f.local_after}"
                                 for f in drifted)[:1000]
    session.add(state)
    session.commit()


def shops_due_for_reconciliation(runtime: Runtime, now: datetime) -> list[int]:
    """Active shops whose first sync is done and whose last pass began a day ago (or never ran).

    Each one returned is marked as begun now, so a pass still queued or running is not enqueued
    again by the next scheduler round (a pass that fails waits for the next day).
    """
    with runtime.sessions() as session:
        synced = set(session.execute(select(col(SyncState.shop_id)).where(
            col(SyncState.resource) == "orders", col(SyncState.cursor).is_not(None))).scalars())
        states = {s.shop_id: s for s in session.execute(select(SyncState).where(
            col(SyncState.resource) == RECONCILIATION)).scalars()}
        active = session.execute(select(col(Shop.id)).where(col(Shop.state) == InstallState.active)).scalars().all()
        due = [shop_id for shop_id in active if shop_id in synced and (
            shop_id not in states or (states[shop_id].last_run_at or now) <= now - RECONCILE_EVERY)]
        for shop_id in due:
            state = states.get(shop_id) or SyncState(shop_id=shop_id, resource=RECONCILIATION)
            state.last_run_at = now
            session.add(state)
        session.commit()
        return due

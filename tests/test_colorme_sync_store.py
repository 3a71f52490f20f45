"""Syncing a sandbox ColorMe shop into storage: guests, deletions, cursors, resumed backfills and
the daily reconciliation."""
from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlmodel import Session, col

from connectors.base import ShopConnector
from connectors.colorme.client import ColorMeClient
from connectors.colorme.sync import ColorMeConnector
from connectors.errors import ProviderDown
from plugin.demo.sandbox.app import SandboxConfig, create_sandbox_app
from plugin.demo.sandbox.listing import delete_customer, delete_product, touch
from plugin.demo.sandbox.seed import SandboxData, generate
from plugin.storage.models import Customer, InstallState, Order, OrderLine, Product, Shop, SyncState
from plugin.sync.reconcile import RECONCILIATION, reconcile
from plugin.sync.store import sync_shop
from tests.factories import make_shop

API = "https://api.shop-pro.jp"
TOKEN = "sandbox-token"


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)  # the sandbox counts its 7-day default from its own clock


class Sandbox:
    """The sandbox ColorMe shop behind a connector, counting the requests it answers."""

    def __init__(self, data: SandboxData) -> None:
        self.data = data
        self.app = TestClient(create_sandbox_app(data, SandboxConfig("http://okaeri.test", "cid", "cs", "wh",
                                                                     tokens={TOKEN})))
        self.requests: list[httpx.Request] = []

    def forward(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.app.request(request.method, request.url.raw_path.decode(), headers=dict(request.headers))
        return httpx.Response(answer.status_code, headers=answer.headers, content=answer.content)

    def connector(self, now: datetime) -> ColorMeConnector:
        return ColorMeConnector(ColorMeClient(API, TOKEN, transport=httpx.MockTransport(self.forward),
                                              sleep=lambda _s: None), now)


@pytest.fixture
def sandbox() -> Sandbox:
    return Sandbox(generate(42, _now(), "https://sandbox.test/store", customers=60, products=25, guests=6, deleted=2))


def _shop(session: Session, now: datetime, external_id: str = "PA00000001") -> Shop:
    return make_shop(session, now, external_id=external_id, state=InstallState.active)


def _sync(session: Session, shop: Shop, connector: ShopConnector, now: datetime, **kw: Any) -> dict[str, int]:
    return sync_shop(session, shop, connector, now, points_expire_months=12, **kw)


def _count(session: Session, model: Any, *where: Any) -> int:
    return int(session.execute(select(func.count()).select_from(model).where(*where)).scalar_one())


def _guest_emails(data: SandboxData) -> set[str]:
    return {s["customer"]["mail"] for s in data.sales if s["customer"].get("member") is False}


def test_guest_buyers_become_customers_keyed_by_email_within_their_shop(session: Session, sandbox: Sandbox) -> None:
    # Given a shop whose guests (no account) bought, synced into two installs of Okaeri
    now = _now()
    first, second = _shop(session, now), _shop(session, now, "PA00000002")
    # When both sync
    _sync(session, first, sandbox.connector(now), now)
    _sync(session, second, sandbox.connector(now), now)
    # Then each guest is one customer per shop, keyed by email, holding their orders
    emails = _guest_emails(sandbox.data)
    for shop in (first, second):
        guests = session.execute(select(Customer).where(col(Customer.shop_id) == shop.id,
                                                        col(Customer.is_guest).is_(True))).scalars().all()
        assert {g.email for g in guests} == emails
        assert {g.external_id for g in guests} == {f"guest:{e}" for e in emails}
        assert all(not g.email_consent for g in guests)  # a guest never opted in to the newsletter
        guest_orders = _count(session, Order, col(Order.shop_id) == shop.id,
                              col(Order.customer_id).in_([g.id for g in guests]))
        assert guest_orders == sum(1 for s in sandbox.data.sales if s["customer"].get("member") is False)
    ids = [set(session.execute(select(col(Customer.id)).where(col(Customer.shop_id) == s.id,
                                                              col(Customer.is_guest).is_(True))).scalars())
           for s in (first, second)]
    assert not ids[0] & ids[1]  # never merged across shops


def test_a_guest_who_registers_becomes_that_member_with_their_orders(session: Session, sandbox: Sandbox) -> None:
    # Given a synced shop with a guest buyer
    now = _now()
    shop = _shop(session, now)
    _sync(session, shop, sandbox.connector(now), now)
    guest = sandbox.data.guests[0]
    row = session.execute(select(Customer).where(col(Customer.shop_id) == shop.id,
                                                 col(Customer.email) == guest["mail"])).scalar_one()
    orders_before = _count(session, Order, col(Order.customer_id) == row.id)
    # When the guest registers as a member with the same email, and a later sync sees it
    later = now + timedelta(seconds=30)
    member = {**sandbox.data.customers[0], "id": 5999999, "mail": guest["mail"], "member": True,
              "make_date": int(later.timestamp()), "update_date": int(later.timestamp())}
    sandbox.data.customers.append(member)
    _sync(session, shop, sandbox.connector(later), later)
    # Then the guest's row is now the member's: same row, same orders, no second customer
    session.expire_all()
    rows = session.execute(select(Customer).where(col(Customer.shop_id) == shop.id,
                                                  col(Customer.email) == guest["mail"])).scalars().all()
    assert [(r.id, r.external_id, r.is_guest) for r in rows] == [(row.id, "5999999", False)]
    assert orders_before > 0 and _count(session, Order, col(Order.customer_id) == row.id) == orders_before


def test_a_guest_order_by_a_members_email_goes_to_the_member(session: Session, sandbox: Sandbox) -> None:
    # Given a member, who checks out once without logging in
    now = _now()
    member = sandbox.data.customers[3]
    sale = {**sandbox.data.sales[-1], "id": 99999999, "make_date": int(now.timestamp()) - 60,
            "update_date": int(now.timestamp()) - 60,
            "customer": {"id": 7999999, "member": False, "mail": member["mail"].upper(), "name": member["name"]}}
    sandbox.data.sales.append(sale)
    shop = _shop(session, now)
    # When the shop syncs
    _sync(session, shop, sandbox.connector(now), now)
    # Then that order is the member's and no guest row exists for the address
    order = session.execute(select(Order).where(col(Order.external_id) == "99999999")).scalar_one()
    owner = session.get(Customer, order.customer_id)
    assert owner is not None and owner.external_id == str(member["id"]) and not owner.is_guest
    assert _count(session, Customer, col(Customer.external_id) == f"guest:{member['mail'].lower()}") == 0


def test_a_deleted_product_and_customer_are_closed_not_orphaned(session: Session, sandbox: Sandbox) -> None:
    # Given a synced shop
    now = _now()
    shop = _shop(session, now)
    _sync(session, shop, sandbox.connector(now), now)
    sold = next(p for p in sandbox.data.products
                if any(d["product_id"] == p["id"] for s in sandbox.data.sales for d in s["details"]))
    buyer = next(c for c in sandbox.data.customers if any(s["customer"]["id"] == c["id"] for s in sandbox.data.sales))
    # When the merchant deletes a product that sold and a customer who bought (they vanish from the lists)
    delete_product(sandbox.data, sold["id"])
    delete_customer(sandbox.data, buyer["id"])
    assert sandbox.app.get(f"/v1/products/{sold['id']}.json", headers={"Authorization": f"Bearer {TOKEN}"}).json() == {
        "errors": [{"code": 404100, "message": "商品が見つかりません", "status": 404}]}
    later = now + timedelta(minutes=1)
    findings = reconcile(session, shop, sandbox.connector(later), later, points_expire_months=12)
    # Then the reconciliation saw the counts apart and closed both rows, which their orders still reference
    assert {f.resource: f.repaired for f in findings} == {"customers": True, "products": True, "orders": False}
    session.expire_all()
    product = session.execute(select(Product).where(col(Product.external_id) == str(sold["id"]))).scalar_one()
    customer = session.execute(select(Customer).where(col(Customer.external_id) == str(buyer["id"]))).scalar_one()
    assert product.deleted_at == later and not product.visible
    assert customer.deleted_at == later
    assert _count(session, OrderLine, col(OrderLine.product_id) == product.id) > 0
    assert _count(session, Order, col(Order.customer_id) == customer.id) > 0
    # and a product the shop lists again is open again
    sandbox.data.products.append({**sold, "update_date": int(later.timestamp()) + 5})
    _sync(session, shop, sandbox.connector(later + timedelta(minutes=1)), later + timedelta(minutes=1))
    session.expire_all()
    product = session.get(Product, product.id)
    assert product is not None and product.deleted_at is None and product.visible == (sold["display_state"] == "showing")


def test_products_the_shop_deleted_before_the_first_sync_leave_order_lines_by_external_id(
        session: Session, sandbox: Sandbox) -> None:
    now = _now()
    shop = _shop(session, now)
    _sync(session, shop, sandbox.connector(now), now)
    gone = {str(p["id"]) for p in sandbox.data.deleted_products}
    lines = session.execute(select(OrderLine).where(col(OrderLine.product_external_id).in_(gone))).scalars().all()
    assert gone and lines and all(line.product_id is None for line in lines)
    assert _count(session, Product, col(Product.external_id).in_(gone)) == 0


def test_reconciliation_finds_an_order_the_incremental_sync_missed_and_repairs_it(
        session: Session, sandbox: Sandbox) -> None:
    # Given a synced shop, and an old order Okaeri lost (a row that slipped past a moving list)
    now = _now()
    shop = _shop(session, now)
    _sync(session, shop, sandbox.connector(now), now)
    lost = session.execute(select(Order).where(col(Order.shop_id) == shop.id).order_by(col(Order.ordered_at))
                           .offset(20)).scalars().first()
    assert lost is not None
    session.execute(OrderLine.__table__.delete().where(OrderLine.__table__.c.order_id == lost.id))  # type: ignore[attr-defined]
    session.delete(lost)
    session.commit()
    # When an incremental sync runs, it does not see it (nothing changed on the platform) ...
    later = now + timedelta(minutes=15)
    _sync(session, shop, sandbox.connector(later), later)
    assert _count(session, Order, col(Order.external_id) == lost.external_id) == 0
    # ... but the daily reconciliation compares counts and re-walks the orders
    sandbox.requests.clear()
    findings = {f.resource: f for f in reconcile(session, shop, sandbox.connector(later), later)}
    assert (findings["orders"].platform, findings["orders"].local) == (findings["orders"].local + 1,
                                                                       findings["orders"].local)
    assert findings["orders"].repaired and findings["orders"].local_after == findings["orders"].platform
    assert not findings["customers"].repaired and not findings["products"].repaired
    assert _count(session, Order, col(Order.external_id) == lost.external_id) == 1
    counted = [r for r in sandbox.requests if r.url.params.get("limit") == "1"]
    assert len(counted) == 3  # one limit=1 request per resource
    state = session.execute(select(SyncState).where(col(SyncState.resource) == RECONCILIATION)).scalar_one()
    assert state.last_run_at == later and state.last_count == 1 and "orders" in state.last_error


def test_a_shop_in_sync_costs_the_reconciliation_three_requests(session: Session, sandbox: Sandbox) -> None:
    now = _now()
    shop = _shop(session, now)
    _sync(session, shop, sandbox.connector(now), now)
    sandbox.requests.clear()
    findings = reconcile(session, shop, sandbox.connector(now), now)
    assert all(f.agrees and not f.repaired for f in findings) and len(sandbox.requests) == 3


class Failing(ShopConnector):
    """A connector whose order listing fails after `windows` windows (the platform went down)."""

    def __init__(self, inner: ColorMeConnector, windows: int) -> None:
        self.inner, self.windows = inner, windows

    def iter_customers(self, updated_since: datetime | None) -> Iterator[Any]:
        return self.inner.iter_customers(updated_since)

    def iter_products(self, updated_since: datetime | None) -> Iterator[Any]:
        return self.inner.iter_products(updated_since)

    def iter_order_windows(self, updated_since: datetime | None, history_start: datetime) -> Iterator[Any]:
        for n, window in enumerate(self.inner.iter_order_windows(updated_since, history_start)):
            if n == self.windows:
                raise ProviderDown("ColorMe down", platform="colorme")
            yield window


def test_an_interrupted_first_sync_resumes_after_its_last_written_window(session: Session, sandbox: Sandbox) -> None:
    # Given a first sync that fails in its fifth window of orders
    now = _now()
    shop = _shop(session, now)
    with pytest.raises(ProviderDown):
        _sync(session, shop, Failing(sandbox.connector(now), 4), now)
    state = session.execute(select(SyncState).where(col(SyncState.resource) == "orders")).scalar_one()
    written = _count(session, Order, col(Order.shop_id) == shop.id)
    assert state.cursor is None and state.backfill_until is not None and state.backfill_started_at == now
    assert 0 < written == sum(1 for s in sandbox.data.sales if s["make_date"] < state.backfill_until.timestamp())
    resume = state.backfill_until
    # When it runs again
    later = now + timedelta(minutes=15)
    sandbox.requests.clear()
    _sync(session, shop, sandbox.connector(later), later)
    # Then it starts after the written windows, ends with every order, and reads changes from the first start
    afters = [r.url.params["after"] for r in sandbox.requests if r.url.path == "/v1/sales.json"]
    assert min(afters) == resume.astimezone(_jst()).strftime("%Y-%m-%d %H:%M:%S")
    assert _count(session, Order, col(Order.shop_id) == shop.id) == len(sandbox.data.sales)
    session.expire_all()
    state = session.execute(select(SyncState).where(col(SyncState.resource) == "orders")).scalar_one()
    assert state.cursor is not None and state.cursor <= now and state.backfill_until is None


def test_the_cursor_does_not_move_when_a_walk_fails(session: Session, sandbox: Sandbox) -> None:
    now = _now()
    shop = _shop(session, now)
    _sync(session, shop, sandbox.connector(now), now)
    cursor = session.execute(select(col(SyncState.cursor)).where(col(SyncState.resource) == "orders")).scalar_one()
    touch(sandbox.data.sales[-1], now + timedelta(minutes=5), paid=False)
    with pytest.raises(ProviderDown):
        _sync(session, shop, Failing(sandbox.connector(now + timedelta(minutes=15)), 0), now + timedelta(minutes=15))
    session.expire_all()
    assert session.execute(select(col(SyncState.cursor)).where(col(SyncState.resource) == "orders")).scalar_one() == cursor


def _jst() -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo("Asia/Tokyo")


def test_a_customer_the_platform_deleted_gets_no_message(runtime, session, clock) -> None:  # type: ignore[no-untyped-def]
    from plugin.delivery.batch import deliver_batch
    from plugin.engine.tick import run_shop_tick
    from plugin.storage.models import Message
    from plugin.sync.deletions import close_missing
    from tests.factories import idle_cart_shop

    # Given three customers with idle carts, one of whom the merchant deleted in ColorMe
    shop, people, _ = idle_cart_shop(session, clock.now())
    listed = {p.external_id for p in people[1:]}
    assert close_missing(session, shop.id, "customers", listed, clock.now()) == 1
    # When the scenario ticks
    run_shop_tick(runtime, shop.id)
    # Then only the two others get a reminder
    session.expire_all()
    messages = session.execute(select(Message).where(col(Message.shop_id) == shop.id)).scalars().all()
    assert {m.customer_id for m in messages} == {p.id for p in people[1:]}
    # and one deleted after the tick wrote its reminder is not sent it either
    close_missing(session, shop.id, "customers", {people[2].external_id}, clock.now())
    by_customer = {m.customer_id: m.id for m in messages}
    outcomes = deliver_batch(runtime, list(by_customer.values()))
    assert outcomes[by_customer[people[1].id]][0] == "cancelled"
    assert outcomes.get(by_customer[people[2].id], ("skipped", None))[0] != "cancelled"


def test_a_deleted_product_is_never_promoted(session: Session, sandbox: Sandbox) -> None:
    from scenarios.base import in_stock_views

    now = _now()
    shop = _shop(session, now)
    _sync(session, shop, sandbox.connector(now), now)
    shown = [p for p in sandbox.data.products if p["display_state"] == "showing" and not p["stock_managed"]]
    delete_product(sandbox.data, shown[0]["id"])
    reconcile(session, shop, sandbox.connector(now), now)
    ids = dict(session.execute(select(col(Product.external_id), col(Product.id)).where(
        col(Product.external_id).in_([str(p["id"]) for p in shown[:2]]))).tuples().all())
    assert set(in_stock_views(session, shop.id or 0, list(ids.values()))) == {ids[str(shown[1]["id"])]}


def test_the_scheduler_enqueues_one_reconciliation_per_shop_and_day(runtime, session, clock, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from plugin.jobs.scheduler import Scheduler

    # Given an active shop whose first sync is done, and one still syncing for the first time
    synced, fresh = _shop(session, clock.now()), _shop(session, clock.now(), "PA00000002")
    session.add(SyncState(shop_id=synced.id or 0, resource="orders", cursor=clock.now(), last_run_at=clock.now()))
    session.commit()
    enqueued: list[int] = []
    monkeypatch.setattr(runtime.tasks, "reconcile_shop", enqueued.append)
    scheduler = Scheduler(runtime)
    # When the scheduler runs rounds all day, then the next day
    for _ in range(3):
        scheduler.run_once()
        clock.advance(hours=1)
    first_day = list(enqueued)
    clock.advance(hours=22)
    scheduler.run_once()
    # Then the synced shop was reconciled once on the first day and again on the next; the other not yet
    assert first_day == [synced.id] and enqueued == [synced.id, synced.id]
    assert fresh.id not in enqueued


def test_reconcile_from_the_command_line_names_an_unknown_shop_in_one_line(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.test_cli import _okaeri, _one_clear_line

    env = {"OKAERI_SECRET_KEY": "k" * 40, "OKAERI_DATA_DIR": str(tmp_path)}
    assert _okaeri("migrate", env=env, cwd=tmp_path).returncode == 0
    assert "unknown shop" in _one_clear_line(_okaeri("reconcile", "PA99999999", env=env, cwd=tmp_path))
    assert "reconcile" in _okaeri("--help").stdout


def test_an_empty_listing_does_not_close_every_row(session: Session, sandbox: Sandbox) -> None:
    from plugin.sync.deletions import close_missing

    now = _now()
    shop = _shop(session, now)
    _sync(session, shop, sandbox.connector(now), now)
    assert close_missing(session, shop.id or 0, "products", set(), now) == 0
    assert _count(session, Product, col(Product.deleted_at).is_not(None)) == 0

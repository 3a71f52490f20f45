"""Orders written by the sync store: their lines, their buyers' recency, and times that compare
with the ones written elsewhere."""
from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlmodel import Session, col

from connectors.base import CustomerRecord, OrderLineRecord, OrderRecord
from plugin.storage.models import Customer, Order, OrderLine, Shop
from plugin.sync.store import store_records
from tests.factories import make_shop

NOW = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)


def _customer(session: Session, shop: Shop, external_id: str = "c1") -> Customer:
    store_records(session, shop.id or 0, "customers", [
        CustomerRecord(external_id=external_id, email=f"{external_id}@example.jp", name="山田 花子", email_consent=True,
                       points_balance=0, updated_at=NOW)], NOW)
    session.commit()
    customer = session.execute(select(Customer).where(col(Customer.external_id) == external_id)).scalar_one()
    return customer


def _order(external_id: str, placed: datetime, *, canceled: bool = False, lines: int = 1,
           buyer: str = "c1") -> OrderRecord:
    return OrderRecord(external_id=external_id, customer_external_id=buyer, ordered_at=placed, updated_at=placed,
                       total=1280 * lines, currency="JPY", canceled=canceled,
                       lines=[OrderLineRecord(f"p{n}", "ほうじ茶", 1280, 1) for n in range(lines)])


def _store(session: Session, shop: Shop, *orders: OrderRecord) -> None:
    store_records(session, shop.id or 0, "orders", list(orders), NOW)
    session.commit()


def _last_order_at(session: Session, customer: Customer) -> datetime | None:
    return session.execute(select(col(Customer.last_order_at)).where(col(Customer.id) == customer.id)).scalar_one()


def test_a_customers_last_order_is_their_latest_order_not_cancelled(session: Session) -> None:
    # Given a customer with two orders
    shop = make_shop(session, NOW)
    customer = _customer(session, shop)
    earlier, later = NOW - timedelta(days=30), NOW - timedelta(days=2)
    _store(session, shop, _order("o1", earlier), _order("o2", later))
    assert _last_order_at(session, customer) == later
    # When the later order is cancelled, the earlier one is their last order again
    _store(session, shop, _order("o2", later, canceled=True))
    assert _last_order_at(session, customer) == earlier
    # And when every order is cancelled, the last known time stays (nothing to recompute it from)
    _store(session, shop, _order("o1", earlier, canceled=True))
    assert _last_order_at(session, customer) == earlier


def test_a_resynced_order_replaces_its_lines(session: Session) -> None:
    # Given an order of three lines
    shop = make_shop(session, NOW)
    _customer(session, shop)
    _store(session, shop, _order("o1", NOW - timedelta(days=1), lines=3))
    # When the platform lists it again with one line
    _store(session, shop, _order("o1", NOW - timedelta(days=1), lines=1))
    # Then it has that one line
    order_id = session.execute(select(col(Order.id)).where(col(Order.external_id) == "o1")).scalar_one()
    assert session.execute(select(col(OrderLine.product_external_id)).where(
        col(OrderLine.order_id) == order_id)).scalars().all() == ["p0"]


def test_an_order_listed_twice_in_one_batch_is_stored_once_as_last_listed(session: Session) -> None:
    # Given a listing that returns an order twice (it changed while the listing was paged)
    shop = make_shop(session, NOW)
    _customer(session, shop)
    placed = NOW - timedelta(days=1)
    # When both are stored in one batch
    _store(session, shop, _order("o1", placed, lines=2), _order("o1", placed, lines=1, canceled=True))
    # Then there is one order, as last listed, with its lines once
    orders = session.execute(select(Order).where(col(Order.shop_id) == shop.id)).scalars().all()
    assert [(o.external_id, o.canceled) for o in orders] == [("o1", True)]
    assert len(session.execute(select(OrderLine).where(col(OrderLine.order_id) == orders[0].id)).all()) == 1


def test_an_order_is_found_from_the_very_moment_it_was_placed(session: Session) -> None:
    # Given an order the sync stored, placed at a whole second
    shop = make_shop(session, NOW)
    _customer(session, shop)
    placed = datetime(2026, 11, 1, 3, 0, tzinfo=UTC)
    _store(session, shop, _order("o1", placed))
    # When orders placed from that moment on are asked for (as scenario windows ask)
    found = session.execute(select(col(Order.external_id)).where(col(Order.ordered_at) >= placed)).scalars().all()
    # Then it is among them
    assert found == ["o1"]


def test_orders_of_many_batches_each_keep_their_own_lines_and_buyer(session: Session) -> None:
    # Given more orders than one batch holds, of two customers, with a varying number of lines
    shop = make_shop(session, NOW)
    first, second = _customer(session, shop, "c1"), _customer(session, shop, "c2")
    orders = [_order(f"o{n}", NOW - timedelta(hours=n), lines=1 + n % 4, buyer="c1" if n % 2 else "c2")
              for n in range(1, 1203)]
    # When they are stored
    _store(session, shop, *orders)
    # Then every order has its own lines and its buyer, and each buyer's last order is their latest
    stored = {o.external_id: o for o in session.execute(select(Order)).scalars()}
    assert len(stored) == len(orders)
    counts: dict[int, int] = {}
    for order_id in session.execute(select(col(OrderLine.order_id))).scalars():
        counts[order_id] = counts.get(order_id, 0) + 1
    assert all(counts[stored[o.external_id].id or 0] == len(o.lines) for o in orders)
    assert stored["o1"].customer_id == first.id and stored["o2"].customer_id == second.id
    assert _last_order_at(session, first) == NOW - timedelta(hours=1)
    assert _last_order_at(session, second) == NOW - timedelta(hours=2)


def test_an_older_copy_of_an_order_never_overwrites_a_newer_one(session: Session) -> None:
    # Given an order a webhook stored while the first sync was running: cancelled, its lines changed
    shop = make_shop(session, NOW)
    _customer(session, shop)
    placed = NOW - timedelta(days=3)
    newer = _order("o1", placed, canceled=True, lines=2)
    _store(session, shop, replace(newer, updated_at=NOW - timedelta(hours=1)))
    # When the bulk export's older copy of it (and a new order) are stored after it
    _store(session, shop, _order("o1", placed, lines=1), _order("o2", placed))
    # Then the newer data stands, lines and all, and the new order is written
    order = session.execute(select(Order).where(col(Order.external_id) == "o1")).scalar_one()
    assert order.canceled is True
    lines = session.execute(select(col(OrderLine.id)).where(col(OrderLine.order_id) == order.id)).all()
    assert len(lines) == 2
    assert session.execute(select(col(Order.id)).where(col(Order.external_id) == "o2")).scalar_one_or_none()


def test_recency_touches_only_the_batch_buyers_found_by_id_not_by_walking_the_shop(session: Session) -> None:
    # Given a shop with several customers, and another shop whose customer has an order of its own
    shop, other = make_shop(session, NOW), make_shop(session, NOW, domain="other.example")
    buyer, bystander = _customer(session, shop, "c1"), _customer(session, shop, "c2")
    elsewhere = _customer(session, other, "c9")
    store_records(session, other.id or 0, "orders", [_order("x1", NOW - timedelta(days=9), buyer="c9")], NOW)
    session.commit()
    statements: list[str] = []
    driver = session.connection().connection.driver_connection
    traced = session.get_bind().dialect.name == "sqlite"
    if traced:
        driver.set_trace_callback(statements.append)
    # When one order of the first shop's buyer is stored
    _store(session, shop, _order("o1", NOW - timedelta(days=1)))
    if traced:
        driver.set_trace_callback(None)
    # Then only that buyer's last order moves; the shop's other customer and the other shop's keep theirs
    assert _last_order_at(session, buyer) == NOW - timedelta(days=1)
    assert _last_order_at(session, bystander) is None
    assert _last_order_at(session, elsewhere) == NOW - timedelta(days=9)
    if traced:  # and SQLite finds the batch's buyers by their ids, not by walking every customer of the shop
        recency = next(s for s in statements if s.startswith("UPDATE customers SET last_order_at"))
        plan = [row[3] for row in driver.execute(f"EXPLAIN QUERY PLAN {recency}")]
        assert any("customers USING INTEGER PRIMARY KEY" in step for step in plan), plan

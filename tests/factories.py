"""Test data as plain functions: each makes one row with sensible defaults and commits."""
from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session

from plugin.crypto import TokenCipher
from plugin.storage.models import BrowseEvent, Cart, CartLine, Customer, InstallState, Order, OrderLine, Product, ScenarioSetting, Shop

_seq = itertools.count(1)


def _save(session: Session, row: Any) -> Any:
    session.add(row)
    session.commit()
    session.refresh(row)
    return row


def make_shop(session: Session, now: datetime, **fields: Any) -> Shop:
    n = next(_seq)
    values = {"platform": "colorme", "external_id": f"PA{n:08d}", "name": "テスト商店", "domain": "https://test.shop-pro.jp",
              "owner_email": "owner@test.example", "sender_address": "〒150-0043 東京都渋谷区道玄坂1-2-3",
              "state": InstallState.active, "event_key": f"key-{n}", "installed_at": now, "created_at": now,
              "access_token_encrypted": TokenCipher("test-secret-key-0123456789abcdef0123456789").encrypt("tok")}
    return _save(session, Shop(**{**values, **fields}))


def make_customer(session: Session, shop: Shop, now: datetime, **fields: Any) -> Customer:
    n = next(_seq)
    values = {"shop_id": shop.id, "external_id": str(n), "email": f"customer{n}@example.jp", "name": f"顧客 {n}",
              "email_consent": True, "created_at": now, "updated_at": now}
    return _save(session, Customer(**{**values, **fields}))


def make_product(session: Session, shop: Shop, now: datetime, **fields: Any) -> Product:
    n = next(_seq)
    values = {"shop_id": shop.id, "external_id": str(100000 + n), "code": f"P-{n}", "group_code": f"P-{n}",
              "name": f"商品{n}", "price": 1200, "stock": 10, "category": "コーヒー豆",
              "url": f"https://test.shop-pro.jp/?pid={100000 + n}", "updated_at": now}
    values["platform_group_code"] = fields.get("group_code", values["group_code"])  # the platform's, before any rule
    return _save(session, Product(**{**values, **fields}))


def make_cart(session: Session, shop: Shop, customer: Customer, items: list[Product], updated_at: datetime) -> Cart:
    cart = _save(session, Cart(shop_id=shop.id, external_key=f"customer:{customer.external_id}",
                               customer_id=customer.id, recovery_url="https://test.shop-pro.jp/cart/",
                               created_at=updated_at, updated_at=updated_at))
    for product in items:
        session.add(CartLine(shop_id=shop.id, cart_id=cart.id, product_id=product.id,
                             product_external_id=product.external_id, quantity=1, unit_price=product.price))
    session.commit()
    return cart


def make_order(session: Session, shop: Shop, customer: Customer, ordered_at: datetime,
               items: list[Product] | None = None) -> Order:
    order = _save(session, Order(shop_id=shop.id, external_id=str(next(_seq)), customer_id=customer.id,
                                 ordered_at=ordered_at, updated_at=ordered_at, total=1200))
    for product in items or []:
        session.add(OrderLine(shop_id=shop.id, order_id=order.id, product_id=product.id,
                              product_external_id=product.external_id, name=product.name, unit_price=product.price))
    session.commit()
    return order


def enable(session: Session, shop: Shop, scenario_key: str, now: datetime, **fields: Any) -> ScenarioSetting:
    """Switch a preset on; no holdout unless a test asks for one (so audiences are exact)."""
    fields.setdefault("holdout_percent", 0)
    return _save(session, ScenarioSetting(shop_id=shop.id, scenario_key=scenario_key, enabled=True,
                                          updated_at=now, **fields))


def idle_cart_shop(session: Session, now: datetime, customers: int = 3) -> tuple[Shop, list[Customer], Product]:
    """A shop with cart recovery on and `customers` carts left two hours ago."""
    shop = make_shop(session, now)
    product = make_product(session, shop, now, name="深煎りブレンド 200g")
    people = [make_customer(session, shop, now) for _ in range(customers)]
    for person in people:
        make_cart(session, shop, person, [product], now - timedelta(hours=2))
    enable(session, shop, "cart_recovery", now)
    return shop, people, product


def make_view(session: Session, shop: Shop, customer: Customer, product: Product, at: datetime) -> BrowseEvent:
    return _save(session, BrowseEvent(shop_id=shop.id, customer_id=customer.id, product_id=product.id, occurred_at=at))


def make_message(session: Session, shop: Shop, customer: Customer, now: datetime, **fields: Any) -> Any:
    """A cart reminder the outbox holds for the customer, due now (pending)."""
    from plugin.storage.models import Message, MessageStatus, Trigger

    trigger = Trigger("cart", fields.pop("ref", None), None)
    values = {"shop_id": shop.id, "customer_id": customer.id, "scenario_key": "cart_recovery", "trigger_key": trigger.key,
              "trigger_kind": trigger.kind, "trigger_ref": trigger.ref, "to_address": customer.email or "c@example.jp",
              "status": MessageStatus.pending, "scheduled_at": now, "created_at": now}
    return _save(session, Message(**{**values, **fields}))

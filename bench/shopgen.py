"""Bulk-build benchmark shops straight into storage (core inserts, not factories)."""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine, insert

from plugin.crypto import TokenCipher
from plugin.storage.models import Cart, CartLine, Customer, InstallState, Product, ScenarioSetting, Shop

CHUNK = 2000


def _bulk(engine: Engine, table: object, rows: list[dict[str, object]]) -> None:
    with engine.begin() as connection:
        for start in range(0, len(rows), CHUNK):
            connection.execute(insert(table), rows[start:start + CHUNK])  # type: ignore[arg-type]


def idle_cart_shop(engine: Engine, customers: int, now: datetime, secret: str) -> int:
    """A shop with `customers` consenting customers, each with a two-item cart idle for 2 hours."""
    with engine.begin() as connection:
        shop_id = connection.execute(insert(Shop).values(
            platform="colorme", external_id=f"PA{int(now.timestamp()) % 10**8:08d}", name="ベンチ商店",
            domain="https://bench.shop-pro.jp", owner_email="owner@bench.example", sender_address="東京都渋谷区",
            state=InstallState.active, event_key="bench", installed_at=now, created_at=now,
            access_token_encrypted=TokenCipher(secret).encrypt("t")).returning(Shop.id)).scalar_one()
    products = [{"shop_id": shop_id, "external_id": str(i), "code": f"B-{i}", "group_code": f"B-{i}",
                 "name": f"ベンチ商品 {i}", "price": 1000 + i, "stock": 50, "category": "c", "currency": "JPY",
                 "url": f"https://bench.shop-pro.jp/?pid={i}", "image_url": "", "visible": True, "updated_at": now}
                for i in range(200)]
    _bulk(engine, Product, products)
    _bulk(engine, Customer, [{"shop_id": shop_id, "external_id": str(i), "email": f"b{i}@bench.example",
                              "name": f"顧客 {i}", "email_consent": True, "points_balance": 0,
                              "line_consent": False, "created_at": now, "updated_at": now} for i in range(customers)])
    with engine.connect() as connection:
        customer_ids = [r[0] for r in connection.exec_driver_sql(
            f"SELECT id FROM customers WHERE shop_id = {shop_id} ORDER BY id")]
        product_ids = [r[0] for r in connection.exec_driver_sql(
            f"SELECT id FROM products WHERE shop_id = {shop_id} ORDER BY id")]
    left = now - timedelta(hours=2)
    _bulk(engine, Cart, [{"shop_id": shop_id, "external_key": f"c:{cid}", "customer_id": cid, "recovery_url": "",
                          "total": 0, "currency": "JPY", "created_at": left, "updated_at": left}
                         for cid in customer_ids])
    with engine.connect() as connection:
        cart_ids = [r[0] for r in connection.exec_driver_sql(f"SELECT id FROM carts WHERE shop_id = {shop_id}")]
    _bulk(engine, CartLine, [{"shop_id": shop_id, "cart_id": cart, "product_id": product_ids[(cart + k) % 200],
                              "product_external_id": str((cart + k) % 200), "quantity": 1, "unit_price": 1000}
                             for cart in cart_ids for k in (0, 7)])
    with engine.begin() as connection:
        connection.execute(insert(ScenarioSetting).values(shop_id=shop_id, scenario_key="cart_recovery",
                                                          enabled=True, channel="email", updated_at=now))
        # Statistics, as a live shop's tables have them (a full sync analyses what it loaded;
        # autovacuum does the rest): without them the planner guessed one row per table here.
        connection.exec_driver_sql("ANALYZE")
    return int(shop_id)

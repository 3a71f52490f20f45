"""One full scenario tick (selection + gates + outbox write for all nine presets) on generated
shops of 10k, 100k and 1M customers (about 5 orders each, carts and browse events in
proportion), on SQLite and on PostgreSQL. Each shop is a fresh database.

    python -m bench.scenarios [--sizes 10000,100000,1000000] [--databases sqlite,postgresql]

The first tick after the switch is the heavy one (every lapsed, active or point-holding
customer is written, most deferred by the cap); then, as the tick actor does, the outbox's statistics
are refreshed when it grew (`outbox.analyze_if_grown`); a second tick shows the steady state.
"""
from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlmodel import SQLModel

from bench.host import header
from plugin.clock import FrozenClock
from plugin.engine.tick import run_shop_tick
from plugin.jobs.broker import build_broker
from plugin.runtime import build_runtime
from plugin.settings import Settings
from plugin.storage import outbox
from plugin.storage.db import make_engine
from scenarios import SCENARIOS

SECRET = "bench-secret-key-0123456789abcdef0123456789"
PG = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
NOW = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)  # Monday 12:00 in Tokyo: ranking day, no quiet hours
CHUNK = 50_000


def _stamp(moment: datetime, sqlite: bool) -> Any:
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f") if sqlite else moment


class Loader:
    """Bulk rows into a table: executemany on SQLite, COPY on PostgreSQL."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.sqlite = engine.dialect.name == "sqlite"

    def load(self, table: str, columns: list[str], rows: Iterator[tuple[Any, ...]]) -> int:
        count = 0
        raw = self.engine.raw_connection()
        try:
            cursor = raw.cursor()
            batch: list[tuple[Any, ...]] = []
            for row in rows:
                batch.append(row)
                if len(batch) >= CHUNK:
                    count += self._flush(cursor, table, columns, batch)
                    batch = []
            count += self._flush(cursor, table, columns, batch)
            raw.commit()
        finally:
            raw.close()
        return count

    def _flush(self, cursor: Any, table: str, columns: list[str], batch: list[tuple[Any, ...]]) -> int:
        if not batch:
            return 0
        if self.sqlite:
            marks = ",".join("?" * len(columns))
            cursor.executemany(f"INSERT INTO {table} ({','.join(columns)}) VALUES ({marks})", batch)
        else:
            with cursor.copy(f"COPY {table} ({','.join(columns)}) FROM STDIN") as copy:
                for row in batch:
                    copy.write_row(row)
        return len(batch)


def build_shop(engine: Any, customers: int, seed: int = 1) -> tuple[int, dict[str, int]]:
    """Generate one shop; returns its id and row counts."""
    rng = random.Random(seed)
    loader = Loader(engine)
    s = lambda m: _stamp(m, loader.sqlite)  # noqa: E731
    counts: dict[str, int] = {}
    with engine.begin() as conn:
        shop_id = conn.execute(text(
            "INSERT INTO shops (platform, external_id, domain, name, owner_email, sender_address, timezone, currency,"
            " locale, state, state_message, access_token_encrypted, scopes, event_key, created_at)"
            " VALUES ('colorme', :ext, 'https://bench.shop-pro.jp', 'ベンチ商店', 'o@bench.example', '東京都', 'Asia/Tokyo',"
            " 'JPY', 'ja', 'active', '', '', '', 'bench', :now) RETURNING id"), {"ext": uuid.uuid4().hex, "now": s(NOW)}).scalar_one()
    products = 2000
    counts["products"] = loader.load("products", [
        "id", "shop_id", "external_id", "code", "group_code", "name", "price", "currency", "stock", "category", "url",
        "image_url", "visible", "restocked_at", "low_stock_at", "updated_at"], (
        (i + 1, shop_id, str(i), f"B{i}", f"B{i}", f"商品{i}", 500 + i, "JPY", 0 if i % 50 == 0 else (2 if i % 51 == 0 else 30),
         f"cat{i % 12}", f"https://bench.shop-pro.jp/?pid={i}", "", True,
         s(NOW - timedelta(hours=5)) if i % 97 == 1 else None, s(NOW - timedelta(hours=5)) if i % 51 == 0 else None, s(NOW))
        for i in range(products)))
    orders_per = [min(int(rng.expovariate(0.2)) + 1, 30) for _ in range(customers)]
    last_order = [NOW - timedelta(days=rng.uniform(0, 700)) for _ in range(customers)]
    counts["customers"] = loader.load("customers", [
        "id", "shop_id", "external_id", "email", "name", "line_user_id", "email_consent", "email_consent_at", "line_consent",
        "points_balance", "points_expire_at", "last_order_at", "created_at", "updated_at"], (
        (c + 1, shop_id, str(c), f"c{c}@bench.example", f"顧客{c}", None, rng.random() < 0.8, None, False,
         rng.choice((0, 0, 100, 800, 3000)), s(last_order[c] + timedelta(days=365)), s(last_order[c]), s(NOW), s(NOW))
        for c in range(customers)))

    def orders() -> Iterator[tuple[Any, ...]]:
        order_id = 0
        for c in range(customers):
            for k in range(orders_per[c]):
                order_id += 1
                at = last_order[c] - timedelta(days=k * rng.uniform(20, 90))
                yield (order_id, shop_id, str(order_id), c + 1, s(at), 3000, "JPY", False, s(at))

    counts["orders"] = loader.load("orders", ["id", "shop_id", "external_id", "customer_id", "ordered_at", "total", "currency",
                                              "canceled", "updated_at"], orders())
    counts["order_lines"] = loader.load("order_lines", ["shop_id", "order_id", "product_id", "product_external_id", "name",
                                                        "unit_price", "quantity"],
                                        ((shop_id, o, o % products + 1, str(o % products), "商品", 500, 1)
                                         for o in range(1, counts["orders"] + 1)))
    carted = rng.sample(range(customers), customers // 20)
    counts["carts"] = loader.load("carts", ["id", "shop_id", "external_key", "customer_id", "recovery_url", "revision",
                                            "total", "currency", "created_at", "updated_at"],
                                  ((i + 1, shop_id, f"c:{c}", c + 1, "", 1, 1000, "JPY",
                                    s(NOW - timedelta(hours=rng.uniform(0, 48))), s(NOW - timedelta(hours=rng.uniform(0, 48))))
                                   for i, c in enumerate(carted)))
    counts["cart_lines"] = loader.load("cart_lines", ["shop_id", "cart_id", "product_id", "product_external_id", "quantity",
                                                      "unit_price"],
                                       ((shop_id, i + 1, rng.randrange(products) + 1, "x", 1, 500) for i in range(len(carted))))
    viewers = rng.sample(range(customers), customers // 10)
    counts["browse_events"] = loader.load("browse_events", ["shop_id", "customer_id", "product_id", "occurred_at"], (
        (shop_id, c + 1, rng.randrange(products) + 1, s(NOW - timedelta(hours=rng.uniform(0, 30))))
        for c in viewers for _ in range(2)))
    counts["scenario_settings"] = loader.load("scenario_settings", [
        "shop_id", "scenario_key", "enabled", "delay_minutes", "channel", "holdout_percent", "subject_template",
        "body_template", "note", "updated_at"], ((shop_id, k, True, None, "email", 10, None, None, "", s(NOW)) for k in SCENARIOS))
    # After a bulk load, as PostgreSQL's docs advise: VACUUM sets the hint bits and visibility map a
    # live shop's tables have (else the first tick pays for rewriting every page it reads), ANALYZE
    # gives the planner the row counts.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        tables = ", ".join(SQLModel.metadata.tables)  # this schema's tables, not the whole database
        conn.execute(text("ANALYZE" if loader.sqlite else f"VACUUM ANALYZE {tables}"))
    return shop_id, counts


def _database(kind: str, workdir: Path) -> tuple[str, Any]:
    if kind == "sqlite":
        return f"sqlite:///{workdir / 'bench.db'}", None
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    return f"{PG}?options=-csearch_path%3D{schema}", (admin, schema)


def run(kind: str, customers: int) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="okaeri-scenarios-"))
    url, handle = _database(kind, workdir)
    try:
        engine = make_engine(url)
        SQLModel.metadata.create_all(engine)
        started = time.perf_counter()
        shop_id, counts = build_shop(engine, customers)
        build = time.perf_counter() - started
        settings = Settings(OKAERI_DATA_DIR=workdir, DATABASE_URL=url, OKAERI_SECRET_KEY=SECRET)  # type: ignore[call-arg]
        runtime = build_runtime(settings, engine=engine, broker=build_broker("memory://"), clock=FrozenClock(NOW))
        started = time.perf_counter()
        run_shop_tick(runtime, shop_id)
        first = time.perf_counter() - started
        with engine.connect() as conn:
            written = conn.execute(text("SELECT count(*) FROM messages")).scalar_one()
        started = time.perf_counter()
        with runtime.sessions() as session:  # what the tick actor does after its tick (plugin.jobs.work.tick_shop)
            analysed = outbox.analyze_if_grown(session, 0)
        analyse = time.perf_counter() - started
        runtime.clock.advance(minutes=5)  # type: ignore[attr-defined]
        started = time.perf_counter()
        run_shop_tick(runtime, shop_id)
        second = time.perf_counter() - started
        engine.dispose()
        return {"db": kind, "customers": customers, "orders": counts["orders"], "carts": counts["carts"],
                "views": counts["browse_events"], "build_s": build, "first_s": first, "written": written, "second_s": second,
                "analyse_s": analyse if analysed else None}
    finally:
        if handle:
            admin, schema = handle
            with admin.connect() as conn:
                conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
            admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--databases", default="sqlite,postgresql")
    args = parser.parse_args()
    print(f"# {header()}")
    print("| database | customers | orders | carts | views | build s | first tick s | messages written | "
          "outbox ANALYZE s | second tick s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for kind in args.databases.split(","):
        for size in args.sizes.split(","):
            r = run(kind, int(size))
            print(f"| {r['db']} | {r['customers']} | {r['orders']} | {r['carts']} | {r['views']} | {r['build_s']:.0f} | "
                  f"{r['first_s']:.1f} | {r['written']} | "
                  f"{'—' if r['analyse_s'] is None else format(r['analyse_s'], '.1f')} | {r['second_s']:.1f} |", flush=True)


if __name__ == "__main__":
    main()

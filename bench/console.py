"""The merchant console's pages on a generated large shop: server time (warm, p95) of each page,
through the ASGI app in-process, on SQLite and PostgreSQL.

    python -m bench.console [--customers 1000000] [--messages-per 5] [--requests 40] [--databases sqlite,postgresql]

The shop is generated in SQL (INSERT … SELECT over generate_series on PostgreSQL, a recursive CTE
on SQLite): customers with an order and an order line each, a consent record each, a few
suppressed; `--messages-per` messages per customer across the presets in every state (sent,
control, deferred, cancelled, failed) with their decision tokens; opens and clicks on sent
messages and conversions on some clicks.

Pages are probes in PROBES: a name and a function from the generated shop to the URLs to request
(each a different row, so the timings are not one cached answer). Another console page adds one
entry there and its figures appear in the same table.
"""
from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, text
from sqlmodel import SQLModel

from plugin.clock import FrozenClock
from plugin.jobs.broker import build_broker
from plugin.runtime import build_runtime
from plugin.settings import Settings
from plugin.storage.db import make_engine
from plugin.web.app import create_app
from plugin.web.deps import SESSION_COOKIE, session_cookie
from scenarios import SCENARIOS

SECRET = "bench-secret-key-0123456789abcdef0123456789"
PG = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
NOW = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Shop:
    """What the probes know of the generated shop."""

    id: int
    customers: int
    messages: int
    rng: random.Random

    def customer_ids(self, n: int) -> list[int]:
        return [self.rng.randrange(1, self.customers + 1) for _ in range(n)]


# --- generation -----------------------------------------------------------------------------

class Dialect:
    """The few SQL pieces that differ: a number series and a time some days before NOW."""

    def __init__(self, engine: Engine) -> None:
        self.sqlite = engine.dialect.name == "sqlite"

    def series(self, n: int) -> str:
        """A CTE `seq(g)` of 1..n."""
        if self.sqlite:
            return f"WITH RECURSIVE seq(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM seq WHERE g < {n}) "
        return f"WITH seq(g) AS (SELECT generate_series(1, {n})) "

    def ago(self, days: str) -> str:
        """NOW minus `days` (an SQL expression, may be fractional), as a stored time."""
        if self.sqlite:
            return f"strftime('%Y-%m-%d %H:%M:%S', julianday('{NOW:%Y-%m-%d %H:%M:%S}') - ({days}))"
        return f"(TIMESTAMP '{NOW:%Y-%m-%d %H:%M:%S}' - ({days}) * INTERVAL '1 day')"

    def text(self, expr: str) -> str:
        return f"CAST({expr} AS TEXT)"


def generate(engine: Engine, customers: int, messages_per: int) -> tuple[int, dict[str, int]]:
    """Build the shop in SQL; its id and the row counts."""
    d = Dialect(engine)
    keys = list(SCENARIOS)
    scenario_case = f"CASE ((c.id + k.g) % {len(keys)}) " + " ".join(f"WHEN {i} THEN '{k}'" for i, k in enumerate(keys)) + " END"
    steps = []
    with engine.begin() as conn:
        shop_id = conn.execute(text(
            "INSERT INTO shops (platform, external_id, domain, name, owner_email, sender_address, timezone, currency, locale,"
            " state, state_message, access_token_encrypted, scopes, event_key, script_tag_id, quiet_start_hour,"
            " quiet_end_hour, cap_window_hours, cap_count, created_at) VALUES ('colorme', :ext, 'https://bench.shop-pro.jp',"
            " 'ベンチ商店', 'o@bench.example', '東京都', 'Asia/Tokyo', 'JPY', 'ja', 'active', '', '', '', 'bench', '', 21, 8, 24, 1,"
            " :now) RETURNING id"), {"ext": uuid.uuid4().hex, "now": NOW.replace(tzinfo=None)}).scalar_one()
    steps.append(("customers", d.series(customers) +
                  "INSERT INTO customers (id, shop_id, external_id, email, name, email_consent, line_consent, points_balance,"
                  " points_expire_at, last_order_at, created_at, updated_at) SELECT g, :shop, " + d.text("g + 5000000") +
                  ", 'c' || g || '@bench.example', '顧客' || g || ' ' || substr('山田佐藤鈴木高橋田中伊藤渡辺中村', 1 + (g % 8) * 2, 2),"
                  " g % 10 < 8, false, (g % 5) * 400, " + d.ago("(g % 700) - 365") + ", " + d.ago("g % 700") + ", " +
                  d.ago("800") + ", " + d.ago("1") + " FROM seq"))
    steps.append(("orders", "INSERT INTO orders (id, shop_id, external_id, customer_id, ordered_at, total, currency, canceled,"
                  " updated_at) SELECT id, :shop, " + d.text("id + 9000000") + ", id, last_order_at, 1000 + (id % 50) * 100,"
                  " 'JPY', false, last_order_at FROM customers WHERE shop_id = :shop"))
    steps.append(("order_lines", "INSERT INTO order_lines (shop_id, order_id, product_id, product_external_id, name, unit_price,"
                  " quantity) SELECT :shop, id, NULL, '', '商品 ' || (id % 200), total, 1 + id % 2 FROM orders WHERE shop_id = :shop"))
    steps.append(("consent_records", "INSERT INTO consent_records (shop_id, channel, address, consented, source, recorded_at)"
                  " SELECT :shop, 'email', email, email_consent, 'platform sync', created_at FROM customers WHERE shop_id = :shop"))
    steps.append(("suppressions", "INSERT INTO suppressions (shop_id, channel, address, reason, created_at)"
                  " SELECT :shop, 'email', email, 'unsubscribed', " + d.ago("3") + " FROM customers WHERE shop_id = :shop"
                  " AND id % 50 = 7"))
    # Message k of customer c: its state cycles over (c + k) % 10; created k weeks (plus c % 7 days) ago.
    state = "((c.id + k.g) % 10)"
    status = (f"CASE WHEN {state} < 6 THEN 'sent' WHEN {state} = 6 THEN 'control' WHEN {state} = 7 THEN 'cancelled'"
              f" WHEN {state} = 8 THEN 'failed' ELSE 'pending' END")
    decision = (f"CASE WHEN {state} = 6 THEN 'cap=ok;quiet=ok;holdout=control@10'"
                f" WHEN {state} = 9 THEN 'cap=deferred;holdout=treatment' ELSE 'cap=ok;quiet=ok;holdout=treatment' END")
    error = (f"CASE WHEN {state} = 7 THEN 'exit condition met before delivery'"
             f" WHEN {state} = 8 THEN '550 5.1.1 mailbox unavailable' ELSE '' END")
    created = d.ago("k.g * 7 + c.id % 7 + 0.5")
    steps.append(("messages", d.series(messages_per) +
                  "INSERT INTO messages (shop_id, customer_id, scenario_key, trigger_key, trigger_kind, trigger_ref, trigger_step,"
                  " channel, to_address, subject, decision, status, scheduled_at, attempts, last_error, created_at, sent_at)"
                  f" SELECT :shop, c.id, {scenario_case},"
                  " 'b:' || k.g, 'b', NULL, " + d.text("k.g") + ", 'email', c.email, '', " + decision + ", " + status + ", " +
                  created + ", 0, " + error + ", " + created + f", CASE WHEN {state} < 6 THEN {created} END"
                  " FROM customers c CROSS JOIN seq k WHERE c.shop_id = :shop"))
    steps.append(("message_events", "INSERT INTO message_events (shop_id, message_id, kind, url, occurred_at)"
                  " SELECT :shop, id, 'open', '', created_at FROM messages WHERE shop_id = :shop AND status = 'sent' AND id % 2 = 0"
                  " UNION ALL SELECT :shop, id, 'click', 'https://bench.shop-pro.jp/', created_at FROM messages"
                  " WHERE shop_id = :shop AND status = 'sent' AND id % 5 = 0"))
    steps.append(("conversions", "INSERT INTO conversions (shop_id, order_id, message_id, scenario_key, revenue, ordered_at)"
                  " SELECT :shop, o.id, m.id, m.scenario_key, o.total, o.ordered_at FROM messages m"
                  " JOIN orders o ON o.id = m.customer_id WHERE m.shop_id = :shop AND m.status = 'sent' AND m.trigger_key = 'b:1'"
                  " AND m.customer_id % 5 = 0"))
    counts: dict[str, int] = {}
    for name, sql in steps:
        started = time.perf_counter()
        with engine.begin() as conn:
            conn.execute(text(sql), {"shop": shop_id})
            counts[name] = conn.execute(text(f"SELECT count(*) FROM {name} WHERE shop_id = :shop"), {"shop": shop_id}).scalar_one()
        print(f"#   {name}: {counts[name]:,} rows in {time.perf_counter() - started:.0f} s", flush=True)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        tables = ", ".join(SQLModel.metadata.tables)
        conn.execute(text("ANALYZE" if d.sqlite else f"VACUUM ANALYZE {tables}"))
    return int(shop_id), counts


# --- probes: the console's pages, each a list of URLs over the generated shop ------------------

Probe = Callable[[Shop, int], list[str]]


def _customer_page(shop: Shop, n: int) -> list[str]:
    return [f"/app/customers/{cid}" for cid in shop.customer_ids(n)]


def _search_email(shop: Shop, n: int) -> list[str]:
    return [f"/app/customers?q=c{cid}@bench.example" for cid in shop.customer_ids(n)]


def _search_id(shop: Shop, n: int) -> list[str]:
    return [f"/app/customers?q={cid}" for cid in shop.customer_ids(n)]


def _search_name(shop: Shop, n: int) -> list[str]:
    """A common family name: the first page of hits comes early in the scan."""
    return [f"/app/customers?q={name}" for name in shop.rng.choices(("山田", "佐藤", "鈴木", "高橋"), k=n)]


def _search_rare(shop: Shop, n: int) -> list[str]:
    """A name that matches no one: the worst case, every customer of the shop is looked at."""
    return [f"/app/customers?q=存在しない{k}" for k in range(n)]


PROBES: dict[str, Probe] = {
    "customer page": _customer_page,
    "search: email": _search_email,
    "search: id": _search_id,
    "search: common name": _search_name,
    "search: no match (full scan)": _search_rare,
}


def time_probes(client: TestClient, shop: Shop, requests: int) -> dict[str, dict[str, float]]:
    """Per probe: p50 and p95 ms of `requests` requests, after a warm-up of a few."""
    out = {}
    for name, probe in PROBES.items():
        for url in probe(shop, 3):
            assert client.get(url).status_code == 200, url
        took = []
        for url in probe(shop, requests):
            started = time.perf_counter()
            response = client.get(url)
            took.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, (url, response.status_code)
        took.sort()
        out[name] = {"p50": statistics.median(took), "p95": took[max(0, int(len(took) * 0.95) - 1)], "max": took[-1]}
    return out


# --- runs -------------------------------------------------------------------------------------

def _database(kind: str, workdir: Path) -> tuple[str, Any]:
    if kind == "sqlite":
        return f"sqlite:///{workdir / 'console.db'}", None
    schema = f"bench_console_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    return f"{PG}?options=-csearch_path%3D{schema}", (admin, schema)


def run(kind: str, customers: int, messages_per: int, requests: int) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="okaeri-console-"))
    url, handle = _database(kind, workdir)
    try:
        engine = make_engine(url)
        SQLModel.metadata.create_all(engine)
        started = time.perf_counter()
        shop_id, counts = generate(engine, customers, messages_per)
        build = time.perf_counter() - started
        settings = Settings(OKAERI_DATA_DIR=workdir, DATABASE_URL=url, OKAERI_SECRET_KEY=SECRET)  # type: ignore[call-arg]
        runtime = build_runtime(settings, engine=engine, broker=build_broker("memory://"), clock=FrozenClock(NOW))
        client = TestClient(create_app(runtime), headers={"accept": "text/html"})
        client.cookies.set(SESSION_COOKIE, session_cookie(runtime, shop_id))
        shop = Shop(shop_id, customers, counts["messages"], random.Random(7))
        timings = time_probes(client, shop, requests)
        engine.dispose()
        return {"db": kind, "customers": customers, "messages": counts["messages"],
                "events": counts["message_events"], "build_s": build, "timings": timings}
    finally:
        if handle:
            admin, schema = handle
            with admin.connect() as conn:
                conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
            admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", default="1000000", help="comma-separated sizes")
    parser.add_argument("--messages-per", type=int, default=5)
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--databases", default="sqlite,postgresql")
    args = parser.parse_args()
    print(f"# {platform.node()} {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"{time.strftime('%Y-%m-%d')}", flush=True)
    results = [run(kind, int(size), args.messages_per, args.requests)
               for kind in args.databases.split(",") for size in args.customers.split(",")]
    print(f"\n{args.requests} requests per page (after 3 warm-up), server time through the ASGI app in-process, ms")
    print("| database | customers | messages | events | build s | page | p50 ms | p95 ms | max ms |")
    print("|---|---:|---:|---:|---:|---|---:|---:|---:|")
    for r in results:
        for page, t in r["timings"].items():
            print(f"| {r['db']} | {r['customers']:,} | {r['messages']:,} | {r['events']:,} | {r['build_s']:.0f} | {page} | "
                  f"{t['p50']:.1f} | {t['p95']:.1f} | {t['max']:.1f} |")


if __name__ == "__main__":
    main()

"""The merchant console's pages on a generated large shop: server time (warm, p95) of each page,
through the ASGI app in-process, on SQLite and PostgreSQL.

    python -m bench.console [--customers 1000000] [--messages-per 5] [--requests 40] [--databases sqlite,postgresql]
                            [--only dashboard] [--keep | --reuse sqlite:///… or bench_console_…]

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
from sqlmodel import Session, SQLModel

from plugin.clock import FrozenClock
from plugin.jobs.broker import build_broker
from plugin.measurement.rollup import rebuild
from plugin.runtime import build_runtime
from plugin.settings import Settings
from plugin.storage.db import make_engine
from plugin.storage.models import RollupMark
from plugin.storage.models import Shop as Shop_
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

    def after(self, column: str, hours: str) -> str:
        """`column` plus `hours` hours (an SQL expression)."""
        if self.sqlite:
            return f"strftime('%Y-%m-%d %H:%M:%S', {column}, '+' || ({hours}) || ' hours')"
        return f"({column} + ({hours}) * INTERVAL '1 hour')"

    def text(self, expr: str) -> str:
        return f"CAST({expr} AS TEXT)"


def generate(engine: Engine, customers: int, messages_per: int) -> tuple[int, dict[str, int]]:
    """Build the shop in SQL; its id and the row counts."""
    d = Dialect(engine)
    keys = list(SCENARIOS)
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
    # Message k of customer c, one of nine presets. Its state st cycles over 20: 74 % sent, 10 % held
    # out (control), 5 % cancelled by an exit condition, 5 % suppressed, 5 % failed, 1 % pending (due
    # in the next two days, some deferred by the cap or quiet hours). It was written some day of the
    # last year (sent ones half an hour later), and rows are inserted in that order so that ids grow
    # with time as they do in a real outbox. Multi-step presets get their steps' trigger_step.
    si = f"((c.id + k.g) % {len(keys)})"
    scenario_case = f"CASE {si} " + " ".join(f"WHEN {i} THEN '{k}'" for i, k in enumerate(keys)) + " END"
    pp, cart, points = keys.index("post_purchase"), keys.index("cart_recovery"), keys.index("point_expiry")
    step_case = (f"CASE {si} WHEN {pp} THEN CASE (c.id / {len(keys)}) % 6 WHEN 0 THEN NULL WHEN 1 THEN 'survey'"
                 " WHEN 2 THEN 'd30' WHEN 3 THEN 'd90' WHEN 4 THEN 'd240' ELSE 'd365' END"
                 f" WHEN {cart} THEN CASE WHEN c.id % 3 = 0 THEN 'r' || k.g || '\\:2' ELSE 'r' || k.g END"
                 f" WHEN {points} THEN CASE WHEN c.id % 2 = 0 THEN 'x\\:7' ELSE 'x\\:30' END ELSE {d.text('k.g')} END")
    st = "((c.id * 3 + k.g) % 20)"
    pending = f"({st} = 19 AND c.id % 5 = 0)"
    days = f"CASE WHEN {pending} THEN (c.id % 3) + 0.1 ELSE ((c.id * 37 + k.g * 73) % 365) + (c.id % 24) / 24.0 + 0.05 END"
    inner = (f"SELECT c.id AS cid, c.email AS email, k.g AS g, {scenario_case} AS scenario, {step_case} AS step,"
             f" CASE WHEN {pending} THEN 'pending' WHEN {st} = 14 OR {st} = 15 THEN 'control' WHEN {st} = 16 THEN 'exit'"
             f" WHEN {st} = 17 THEN 'suppressed' WHEN {st} = 18 THEN 'failed' ELSE 'sent' END AS st, {days} AS days"
             " FROM customers c CROSS JOIN seq k WHERE c.shop_id = :shop")
    status = ("CASE WHEN m.st IN ('exit', 'suppressed') THEN 'cancelled' ELSE m.st END")
    decision = ("CASE WHEN m.st = 'control' THEN 'cap=ok;quiet=ok;holdout=control@10'"
                " WHEN m.st = 'pending' AND m.cid % 3 = 0 THEN 'cap=deferred;holdout=treatment'"
                " WHEN m.st = 'pending' AND m.cid % 3 = 1 THEN 'cap=ok;quiet=deferred;holdout=treatment'"
                " ELSE 'cap=ok;quiet=ok;holdout=treatment' END")
    error = ("CASE WHEN m.st = 'exit' THEN 'exit condition met before delivery'"
             " WHEN m.st = 'suppressed' THEN 'suppressed: unsubscribed'"
             " WHEN m.st = 'failed' THEN '550 5.1.1 mailbox unavailable' ELSE '' END")
    created = d.ago("m.days")
    scheduled = f"CASE WHEN m.st = 'pending' THEN {d.ago('-(m.cid % 48) / 24.0')} ELSE {created} END"
    steps.append(("messages", d.series(messages_per) +
                  "INSERT INTO messages (shop_id, customer_id, scenario_key, trigger_key, trigger_kind, trigger_ref, trigger_step,"
                  " channel, to_address, subject, decision, status, scheduled_at, attempts, last_error, created_at, sent_at)"
                  " SELECT :shop, m.cid, m.scenario, 'b:' || m.g, 'b', NULL, m.step, 'email', m.email, '', " + decision + ", " +
                  status + ", " + scheduled + ", 0, " + error + ", " + created +
                  f", CASE WHEN m.st = 'sent' THEN {d.ago('m.days - 0.02')} END FROM ({inner}) m ORDER BY m.days DESC, m.cid"))
    # Opens on 40 % of sent messages (a second open on a quarter of those), clicks on 10 %, hours after the send.
    sent = "FROM messages WHERE shop_id = :shop AND status = 'sent'"
    steps.append(("message_events", "INSERT INTO message_events (shop_id, message_id, kind, url, occurred_at)"
                  f" SELECT :shop, id, 'open', '', {d.after('sent_at', '1 + id % 40')} {sent} AND id % 5 < 2"
                  f" UNION ALL SELECT :shop, id, 'open', '', {d.after('sent_at', '50 + id % 40')} {sent} AND id % 10 = 1"
                  f" UNION ALL SELECT :shop, id, 'click', 'https://bench.shop-pro.jp/', {d.after('sent_at', '2 + id % 40')}"
                  f" {sent} AND id % 10 = 0"))
    # Every fifth customer ordered again a day after their first sent message, attributed to it.
    first = ("FROM (SELECT customer_id AS cid, min(id) AS mid FROM messages WHERE shop_id = :shop AND status = 'sent'"
             " AND customer_id % 5 = 0 GROUP BY customer_id) f JOIN messages m ON m.id = f.mid")
    steps.append(("orders", "INSERT INTO orders (id, shop_id, external_id, customer_id, ordered_at, total, currency, canceled,"
                  f" updated_at) SELECT {customers} + f.cid, :shop, " + d.text(f"{customers} + f.cid + 9000000") +
                  f", f.cid, {d.after('m.sent_at', '24')}, 2000 + (m.id % 30) * 100, 'JPY', false, {d.after('m.sent_at', '24')}"
                  f" {first}"))
    steps.append(("conversions", "INSERT INTO conversions (shop_id, order_id, message_id, scenario_key, revenue, ordered_at)"
                  f" SELECT :shop, o.id, m.id, m.scenario_key, o.total, o.ordered_at {first}"
                  f" JOIN orders o ON o.id = {customers} + f.cid"))
    # Survey answers to a third of the sent survey mails, a score 0–10 each, a comment on every fourth.
    survey = ("FROM messages m WHERE m.shop_id = :shop AND m.scenario_key = 'post_purchase' AND m.trigger_step = 'survey'"
              " AND m.status = 'sent' AND m.id % 3 = 0")
    steps.append(("survey_answers", "INSERT INTO survey_answers (shop_id, customer_id, order_id, message_id, score, comment,"
                  " answered_at, updated_at, confirmed_at, commented_at) SELECT :shop, m.customer_id, m.customer_id, m.id,"
                  " (m.id * 7) % 11, CASE WHEN m.id % 4 = 0 THEN '梱包がとても丁寧でした ' || m.id ELSE '' END,"
                  f" {d.after('m.sent_at', '30')}, {d.after('m.sent_at', '30')}, NULL,"
                  f" CASE WHEN m.id % 4 = 0 THEN {d.after('m.sent_at', '31')} END {survey}"))
    steps.append(("survey_answer_groups", "INSERT INTO survey_answer_groups (shop_id, answer_id, group_key, product_id)"
                  " SELECT :shop, id, 'g' || (message_id % 12), NULL FROM survey_answers WHERE shop_id = :shop"))
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


def _same(*urls: str) -> Probe:
    """Pages whose answer is the shop's whole figures: the same URLs each time, round robin."""
    return lambda shop, n: [urls[k % len(urls)] for k in range(n)]


PROBES: dict[str, Probe] = {
    "dashboard (30 days, daily)": _same("/app/"),
    "dashboard (90 days, weekly)": _same("/app/?period=90&by=week"),
    "dashboard.csv (30 days)": _same("/app/dashboard.csv"),
    "scenario: post_purchase": _same("/app/scenarios/post_purchase"),
    "scenario: cart_recovery": _same("/app/scenarios/cart_recovery"),
    "scenario: queue page 3": _same("/app/scenarios/post_purchase?page=3", "/app/scenarios/cart_recovery?page=3"),
    "surveys (12 months)": _same("/app/surveys"),
    "surveys (12 weeks)": _same("/app/surveys?period=week"),
    "customer page": _customer_page,
    "search: email": _search_email,
    "search: id": _search_id,
    "search: common name": _search_name,
    "search: no match (full scan)": _search_rare,
}


def time_probes(client: TestClient, shop: Shop, requests: int, only: str = "") -> dict[str, dict[str, float]]:
    """Per probe (those whose name contains `only`): p50 and p95 ms of `requests` requests, after a warm-up of a few."""
    out = {}
    for name, probe in PROBES.items():
        if only not in name:
            continue
        for url in probe(shop, 3):
            assert client.get(url).status_code == 200, url
        took, cpu = [], []
        for url in probe(shop, requests):
            started, used = time.perf_counter(), time.process_time()
            response = client.get(url)
            took.append((time.perf_counter() - started) * 1000)
            cpu.append((time.process_time() - used) * 1000)  # this process's CPU: what the load of others does not inflate
            assert response.status_code == 200, (url, response.status_code)
        took.sort()
        cpu.sort()
        out[name] = {"p50": statistics.median(took), "p95": took[max(0, int(len(took) * 0.95) - 1)], "max": took[-1],
                     "cpu50": statistics.median(cpu), "cpu95": cpu[max(0, int(len(cpu) * 0.95) - 1)]}
        print(f"#   {name}: p50 {out[name]['p50']:.0f} ms, p95 {out[name]['p95']:.0f} ms "
              f"(CPU p50 {out[name]['cpu50']:.0f}, p95 {out[name]['cpu95']:.0f})", flush=True)
    return out


# --- runs -------------------------------------------------------------------------------------

def _database(kind: str, workdir: Path, reuse: str) -> tuple[str, Any]:
    """The database's URL and, on PostgreSQL, what drops its schema afterwards (None when kept)."""
    if kind == "sqlite":
        return reuse or f"sqlite:///{workdir / 'console.db'}", None
    admin = create_engine(PG.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT")
    schema = reuse or f"bench_console_{uuid.uuid4().hex[:8]}"
    if not reuse:
        with admin.connect() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
    return f"{PG}?options=-csearch_path%3D{schema}", (admin, schema)


def _reused(engine: Engine) -> tuple[int, dict[str, int]]:
    """A kept shop: its id and row counts, after creating any index the models gained since."""
    for table in SQLModel.metadata.tables.values():
        for index in table.indexes:
            index.create(engine, checkfirst=True)
    with engine.connect() as conn:
        shop_id = conn.execute(text("SELECT max(id) FROM shops WHERE event_key = 'bench'")).scalar_one()
        counts = {name: conn.execute(text(f"SELECT count(*) FROM {name} WHERE shop_id = :shop"), {"shop": shop_id}).scalar_one()
                  for name in ("customers", "messages", "message_events")}
        if engine.dialect.name == "sqlite" and not conn.execute(text(
                "SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'")).scalar_one():
            conn.execute(text("ANALYZE"))  # once: minutes on 5M messages
    return int(shop_id), counts


def _backfill(engine: Engine, shop_id: int) -> float:
    """The generated rows bypassed the writers that keep the dashboard's rollup: recompute it as
    migration 0022 does (once; a reused database keeps it). Seconds taken, 0 when already there."""
    with Session(engine) as session:
        if session.get(RollupMark, shop_id) is not None:
            return 0.0
        started = time.perf_counter()
        rebuild(session, session.get(Shop_, shop_id))
        session.commit()
        took = time.perf_counter() - started
    print(f"#   rollup backfill: {took:.0f} s", flush=True)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE" if engine.dialect.name == "sqlite" else "ANALYZE rollup_days, rollup_held"))
    return took


def run(kind: str, customers: int, messages_per: int, requests: int, *, keep: bool = False, reuse: str = "",
        only: str = "") -> dict[str, Any]:
    """Generate (or reuse) one shop on one database and time the probes on it."""
    workdir = Path(tempfile.mkdtemp(prefix="okaeri-console-"))
    url, handle = _database(kind, workdir, reuse)
    try:
        engine = make_engine(url)
        SQLModel.metadata.create_all(engine)
        started = time.perf_counter()
        shop_id, counts = _reused(engine) if reuse else generate(engine, customers, messages_per)
        build = time.perf_counter() - started
        backfill = _backfill(engine, shop_id)
        settings = Settings(OKAERI_DATA_DIR=workdir, DATABASE_URL=url, OKAERI_SECRET_KEY=SECRET)  # type: ignore[call-arg]
        runtime = build_runtime(settings, engine=engine, broker=build_broker("memory://"), clock=FrozenClock(NOW))
        client = TestClient(create_app(runtime), headers={"accept": "text/html"})
        client.cookies.set(SESSION_COOKIE, session_cookie(runtime, shop_id))
        shop = Shop(shop_id, counts["customers"], counts["messages"], random.Random(7))
        timings = time_probes(client, shop, requests, only)
        engine.dispose()
        return {"db": kind, "customers": counts["customers"], "messages": counts["messages"],
                "events": counts["message_events"], "build_s": build, "backfill_s": backfill, "timings": timings}
    finally:
        if handle and (keep or reuse):
            print(f"# kept: --databases {kind} --reuse {handle[1]}", flush=True)
        elif handle:
            admin, schema = handle
            with admin.connect() as conn:
                conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
            admin.dispose()
        elif keep:
            print(f"# kept: --databases {kind} --reuse {url}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", default="1000000", help="comma-separated sizes")
    parser.add_argument("--messages-per", type=int, default=5)
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--only", default="", help="time only the probes whose name contains this")
    parser.add_argument("--keep", action="store_true", help="keep the generated database (prints how to reuse it)")
    parser.add_argument("--reuse", default="", help="a kept database: the SQLite URL or the PostgreSQL schema")
    args = parser.parse_args()
    print(f"# {platform.node()} {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"{time.strftime('%Y-%m-%d')}", flush=True)
    results = [run(kind, int(size), args.messages_per, args.requests, keep=args.keep, reuse=args.reuse, only=args.only)
               for kind in args.databases.split(",") for size in args.customers.split(",")]
    print(f"\n{args.requests} requests per page (after 3 warm-up), server time through the ASGI app in-process, ms")
    print("| database | customers | messages | events | build s | backfill s | page | p50 ms | p95 ms | max ms | CPU p50 ms | CPU p95 ms |")
    print("|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|")
    for r in results:
        for page, t in r["timings"].items():
            print(f"| {r['db']} | {r['customers']:,} | {r['messages']:,} | {r['events']:,} | {r['build_s']:.0f} | "
                  f"{r['backfill_s']:.0f} | {page} | "
                  f"{t['p50']:.1f} | {t['p95']:.1f} | {t['max']:.1f} | {t['cpu50']:.1f} | {t['cpu95']:.1f} |")


if __name__ == "__main__":
    main()

"""First sync of a large sandbox ColorMe shop against the sandbox's enforced 120 requests a minute.

    python -m bench.colorme_sync [--orders 100000] [--customers 20000] [--scale 10] [--repeat 1]
                                 [--memory-at 10000,30000,100000] [--database-url postgresql://…]
                                 [--redis-url redis://127.0.0.1:6379/3]

The sandbox (this process, a uvicorn thread) serves a generated shop and enforces 120 calls per
token per scaled minute (`--scale 10`: a minute is 6 s, the ceiling 20 calls/s). Each run syncs
in fresh worker processes (`okaeri worker` would run the same `run_sync`), all with one token:

- 1 worker, in-process budget, at each size of `--memory-at` (orders; customers stay the same):
  peak RSS of the syncing process, which must not grow with the orders;
- 2 workers sharing the token's budget through Redis, each running the whole first sync of its own
  Okaeri shop row: the failure issue 14 describes (two workers, one token) with no database
  contention between them to blur the rate.

Rates are the sandbox's own counts: calls per full window from the first call (the mean of
those windows as a share of the ceiling, ≥ 90 % wanted) and the most calls in any window (never
above 100 %), plus the calls it refused with 429.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import resource
import secrets
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import uvicorn
from sqlalchemy import create_engine, insert, text
from sqlmodel import SQLModel

from bench.host import header
from plugin.crypto import TokenCipher
from plugin.demo.mailcatcher import free_port
from plugin.demo.sandbox.app import SandboxConfig, create_sandbox_app
from plugin.demo.sandbox.ratelimit import RateLimit, max_in_window, per_window
from plugin.demo.sandbox.seed import SandboxData, generate
from plugin.storage.db import make_engine
from plugin.storage.models import InstallState, Shop

SECRET = "bench-secret-key-0123456789abcdef0123456789"
CALLS = 120


def shop_data(orders: int, customers: int, now: datetime, store_url: str) -> SandboxData:
    """The sandbox shop with `customers` members and `orders` orders over the last year, ColorMe-shaped."""
    data = generate(42, now, store_url, customers=0, products=240)
    rng = random.Random(42)
    for index in range(1, customers + 1):
        made = int((now - timedelta(days=rng.uniform(1, 700))).timestamp())
        data.customers.append({
            "account_id": "PA00000001", "id": 5000000 + index, "name": f"顧客 {index}", "furigana": "コキャク",
            "mail": f"customer{index:06d}@example.jp", "member": True, "receive_mail_magazine": rng.random() < 0.75,
            "points": rng.randint(0, 3000), "sales_count": 0, "make_date": made, "update_date": made,
            "pref_id": 13, "pref_name": "東京都", "tel": "03-0000-0000"})
    stamps = sorted(now.timestamp() - rng.uniform(0.2, 365) * 86400 for _ in range(orders))
    for number, made in enumerate(stamps, 1):
        buyer = data.customers[rng.randrange(customers)]
        details = []
        for line in range(rng.choice((1, 1, 1, 2, 2, 3))):
            product = data.products[rng.randrange(len(data.products))]
            price, qty = product["sales_price"], rng.choice((1, 1, 2))
            details.append({"id": number * 10 + line, "sale_id": 90000000 + number, "product_id": product["id"],
                            "product_name": product["name"], "product_model_number": product["model_number"],
                            "price": price, "price_with_tax": price * 11 // 10, "product_num": qty, "unit": "個",
                            "subtotal_price": price * 11 // 10 * qty})
        total = sum(d["subtotal_price"] for d in details)
        data.sales.append({
            "id": 90000000 + number, "account_id": "PA00000001", "make_date": int(made),
            "update_date": int(made) + rng.randint(0, 86400), "paid": True, "delivered": True,
            "canceled": rng.random() < 0.02, "point_state": "fixed", "granted_points": total // 100,
            "use_points": 0, "product_total_price": total, "delivery_total_charge": 600, "fee": 0, "tax": total // 11,
            "total_price": total + 600, "customer": buyer, "details": details, "sale_deliveries": []})
    return data


class Sandbox:
    """The sandbox on a loopback port, enforcing the budget; `data.sales` can be swapped between runs."""

    def __init__(self, data: SandboxData, scale: float, token: str) -> None:
        self.limit = RateLimit(calls=CALLS, time_scale=scale)
        self.port, self.token = free_port(), token
        self.data = data
        app = create_sandbox_app(data, SandboxConfig("http://127.0.0.1:9", "cid", "cs", "wh", tokens={token},
                                                     rate_limit=self.limit))
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        while not self.server.started:
            time.sleep(0.05)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def fresh_database(base: str, tmp: Path) -> str:
    """An empty schema: a new PostgreSQL schema in `base`, or a SQLite file."""
    if not base.startswith("postgresql"):
        url = f"sqlite:///{tmp / f'bench-{uuid.uuid4().hex[:8]}.db'}"
    else:
        schema = f"bench_rate_{uuid.uuid4().hex[:8]}"
        admin = create_engine(base.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f"CREATE SCHEMA {schema}"))
        admin.dispose()
        url = f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}"
    engine = make_engine(url)
    SQLModel.metadata.create_all(engine)
    engine.dispose()
    return url


def drop_database(url: str) -> None:
    if "search_path%3D" in url:
        schema = url.rsplit("search_path%3D", 1)[1]
        admin = create_engine(url.split("?")[0].replace("postgresql://", "postgresql+psycopg://", 1),
                              isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def install_shops(url: str, count: int, token: str, now: datetime) -> list[int]:
    """`count` active Okaeri shops that all hold the one sandbox token."""
    engine = make_engine(url)
    with engine.begin() as connection:
        ids = [connection.execute(insert(Shop).values(
            platform="colorme", external_id=f"PA{n + 1:08d}", name=f"ベンチ {n}", domain="https://bench.shop-pro.jp",
            owner_email="owner@bench.example", state=InstallState.active, event_key=f"bench-{n}-{uuid.uuid4().hex[:6]}",
            installed_at=now, created_at=now, access_token_encrypted=TokenCipher(SECRET).encrypt(token),
        ).returning(Shop.id)).scalar_one() for n in range(count)]
    engine.dispose()
    return [int(i) for i in ids]


def run(sandbox: Sandbox, database: str, workers: int, scale: float, store: str, tmp: Path) -> dict[str, Any]:
    """One first sync with `workers` processes; the sandbox's counts and each worker's report."""
    url = fresh_database(database, tmp)
    shops = install_shops(url, workers, sandbox.token, datetime.now(UTC))
    sandbox.limit.reset()
    env = {**os.environ, "DATABASE_URL": url, "OKAERI_SECRET_KEY": SECRET, "OKAERI_DATA_DIR": str(tmp),
           "COLORME_API_BASE": sandbox.base, "COLORME_RATE_WINDOW_SECONDS": str(60.0 / scale),
           "OKAERI_RATE_LIMIT_URL": store if store.startswith("redis") else "", "BROKER_URL": "memory://",
           "OKAERI_REDIS_NAMESPACE": f"bench-rate-{uuid.uuid4().hex[:8]}"}
    started = time.monotonic()
    procs = [subprocess.Popen([sys.executable, "-m", "bench.colorme_sync", "--child", str(shop)], env=env,
                              stdout=subprocess.PIPE, text=True) for shop in shops]
    reports = [json.loads((p.communicate()[0] or "{}").strip().splitlines()[-1]) for p in procs]
    wall = time.monotonic() - started
    drop_database(url)
    seen = sandbox.limit.accepted.get(sandbox.token, [])
    refused = sandbox.limit.refused.get(sandbox.token, [])
    windows = per_window(seen, sandbox.limit.window)
    return {"workers": workers, "orders": len(sandbox.data.sales), "calls": len(seen), "refused": len(refused),
            "windows": len(windows), "mean_share": sum(windows) / len(windows) / CALLS if windows else 0.0,
            "min_share": min(windows) / CALLS if windows else 0.0,
            "max_share": max_in_window(seen + refused, sandbox.limit.window) / CALLS, "wall": wall,
            "reports": reports, "per_window": windows, "store": "redis" if store.startswith("redis") else "in-process"}


def peak_rss_mib() -> int:
    """This process's peak RSS: VmHWM (ru_maxrss would carry the forking parent's peak across exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) // 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def child(shop_id: int) -> None:
    """A worker process: the first sync of one shop, then its peak RSS before and after."""
    from plugin.runtime import build_runtime
    from plugin.settings import load_settings
    from plugin.sync.run import run_sync

    runtime = build_runtime(load_settings())
    before = peak_rss_mib()
    started = time.monotonic()
    counts = run_sync(runtime, shop_id, full=True)
    print(json.dumps({"counts": counts, "seconds": round(time.monotonic() - started, 1), "rss_before_mib": before,
                      "peak_rss_mib": peak_rss_mib()}))
    runtime.close()


def table(results: list[dict[str, Any]], scale: float) -> str:
    rows = ["| workers | budget | orders | calls | refused | full windows | mean share | lowest window | most in a window "
            "| wall s | synced orders | peak RSS MiB (before sync) |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        rss = ", ".join(f"{w['peak_rss_mib']} ({w['rss_before_mib']})" for w in r["reports"])
        synced = ", ".join(f"{w.get('counts', {}).get('orders', '?'):,}" for w in r["reports"])
        rows.append(f"| {r['workers']} | {r['store']} | {r['orders']:,} | {r['calls']} | {r['refused']} | {r['windows']} "
                    f"| {r['mean_share']:.1%} | {r['min_share']:.1%} | {r['max_share']:.1%} | {r['wall']:.0f} | {synced} | {rss} |")
    return "\n".join(rows) + f"\n\n(ceiling {CALLS} calls per {60 / scale:g} s window = 120/min at time scale {scale:g})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--memory-at", default="10000,30000,100000", help="order counts for the 1-worker memory runs")
    parser.add_argument("--scale", type=float, default=10.0, help="scaled minutes per minute (10: a minute is 6 s)")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2, help="processes of the shared-budget run (0: none)")
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", ""))
    parser.add_argument("--redis-url", default=os.environ.get("OKAERI_RATE_LIMIT_URL", "redis://127.0.0.1:6379/3"))
    args = parser.parse_args()
    if args.child is not None:
        return child(args.child)
    print(f"# {header()}")
    token = secrets.token_hex(32)
    full = shop_data(args.orders, args.customers, datetime.now(UTC), "http://127.0.0.1:9/store")
    every = full.sales
    sandbox = Sandbox(full, args.scale, token)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeat):
            for size in [int(n) for n in args.memory_at.split(",") if n]:
                full.sales = every[:: max(1, len(every) // size)][:size]  # the same year, thinner
                results.append(run(sandbox, args.database_url, 1, args.scale, "memory://", Path(tmp)))
                print(table(results[-1:], args.scale).splitlines()[-3], f"load {os.getloadavg()[0]:.1f}", flush=True)
                print("  calls per window:", results[-1]["per_window"], flush=True)
            full.sales = every
            if not args.workers:
                continue
            results.append(run(sandbox, args.database_url, args.workers, args.scale, args.redis_url, Path(tmp)))
            print(table(results[-1:], args.scale).splitlines()[-3], f"load {os.getloadavg()[0]:.1f}", flush=True)
            print("  calls per window:", results[-1]["per_window"], flush=True)
    sandbox.stop()
    print(table(results, args.scale))


if __name__ == "__main__":
    main()

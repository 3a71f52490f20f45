"""Storefront event ingest through the real endpoint: `okaeri serve` in its own process, a client
in another posting events over loopback HTTP keep-alive connections, as browsers' beacons arrive.

The shop's visitors are bound to customers first (one event each carrying the signed proof a mail
link gives), then the measured phase posts product views from those visitors — each one a row
(`browse_events`). Rate limits are on, raised for the bench's event key
(`OKAERI_RATE_LIMIT_RAISED_KEYS`), as issue 18 asks. After the run the rows are counted: every
202 must be a row.

    python -m bench.events [--events 20000] [--concurrency 64] [--visitors 2000] [--database sqlite|postgresql]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select, text
from sqlmodel import SQLModel

from bench.shopgen import idle_cart_shop
from plugin.demo.mailcatcher import free_port
from plugin.runtime import build_runtime
from plugin.settings import Settings
from plugin.storage.db import make_engine
from plugin.storage.models import BrowseEvent, Customer, Product

SECRET = "bench-secret-key-0123456789abcdef0123456789"
PG = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
KEY = "bench"


def _database(kind: str, workdir: Path) -> str:
    if kind == "sqlite":
        return f"sqlite:///{workdir / 'events.db'}"
    schema = f"bench_events_{os.getpid()}"
    engine = make_engine(PG)
    with engine.begin() as connection:
        connection.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    engine.dispose()
    return f"{PG}?options=-csearch_path%3D{schema}"


def _shop(url: str, visitors: int) -> tuple[int, list[tuple[str, str, str]], list[str]]:
    """The bench shop; (visitor id, customer external id, proof) per visitor; product ids."""
    engine = make_engine(url)
    SQLModel.metadata.create_all(engine)
    now = datetime.now(UTC)
    shop_id = idle_cart_shop(engine, visitors, now, SECRET)
    settings = Settings(DATABASE_URL=url, OKAERI_SECRET_KEY=SECRET)  # type: ignore[call-arg]
    runtime = build_runtime(settings, engine=engine)
    from plugin.measurement.links import visitor_proof

    with runtime.sessions() as session:
        customers = session.execute(select(Customer.id, Customer.external_id).where(Customer.shop_id == shop_id)).all()
        products = [p for (p,) in session.execute(select(Product.external_id).where(Product.shop_id == shop_id))]
    people = [(f"bench-visitor-{i:06d}-{os.urandom(6).hex()}", external, visitor_proof(runtime, shop_id, cid, now))
              for i, (cid, external) in enumerate(customers)]
    runtime.close()
    return shop_id, people, products


def _client(url: str, bodies: list[bytes], concurrency: int, out: Any) -> None:
    """Post every body with `concurrency` connections; put (seconds, latencies, statuses) on `out`."""
    async def run() -> tuple[float, list[float], dict[int, int]]:
        latencies: list[float] = []
        statuses: dict[int, int] = {}
        queue = iter(bodies)
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(limits=limits, timeout=30, headers={"Content-Type": "text/plain"}) as client:
            async def one_connection() -> None:
                for body in queue:
                    started = time.perf_counter()
                    answer = await client.post(url, content=body)
                    latencies.append(time.perf_counter() - started)
                    statuses[answer.status_code] = statuses.get(answer.status_code, 0) + 1
            started = time.perf_counter()
            await asyncio.gather(*(one_connection() for _ in range(concurrency)))
            return time.perf_counter() - started, latencies, statuses
    try:
        out.put(asyncio.run(run()))
    except BaseException as exc:  # noqa: BLE001 - the parent reports it instead of waiting forever
        out.put(exc)


def _post_all(url: str, bodies: list[bytes], concurrency: int) -> tuple[float, list[float], dict[int, int]]:
    queue: Any = multiprocessing.Queue()
    child = multiprocessing.Process(target=_client, args=(url, bodies, concurrency, queue))
    child.start()
    result = queue.get()
    child.join()
    if isinstance(result, BaseException):
        raise SystemExit(f"client failed: {result!r}")
    return result  # type: ignore[no-any-return]


def _wait_for(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"server at {url} did not start")


def run(database: str, events: int, concurrency: int, visitors: int, server_workers: int) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="okaeri-events-"))
    url = _database(database, workdir)
    shop_id, people, products = _shop(url, visitors)
    port = free_port()
    env = {**os.environ, "DATABASE_URL": url, "OKAERI_SECRET_KEY": SECRET, "OKAERI_DATA_DIR": str(workdir),
           "OKAERI_RATE_LIMIT_RAISED_KEYS": KEY, "BROKER_URL": "memory://", "OKAERI_LOG_LEVEL": "WARNING"}
    server = subprocess.Popen([sys.executable, "-m", "plugin", "serve", "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_for(f"{base}/healthz")
        endpoint = f"{base}/events/colorme/{KEY}"
        bind = [json.dumps({"type": "product_view", "visitor": v, "customer_id": c, "proof": p,
                            "product_id": products[0]}).encode() for v, c, p in people]
        bound_seconds, _, bound_statuses = _post_all(endpoint, bind, concurrency)
        rng = random.Random(18)
        views = [json.dumps({"type": "product_view", "visitor": v, "customer_id": c,
                             "product_id": rng.choice(products)}).encode()
                 for v, c, _ in (rng.choice(people) for _ in range(events))]
        seconds, latencies, statuses = _post_all(endpoint, views, concurrency)
    finally:
        server.terminate()
        server.wait(timeout=60)
    engine = make_engine(url)
    with engine.connect() as connection:
        rows = connection.execute(select(func.count()).select_from(BrowseEvent).where(
            BrowseEvent.shop_id == shop_id)).scalar_one()
    engine.dispose()
    latencies.sort()
    accepted = statuses.get(202, 0) + bound_statuses.get(202, 0)
    return {"database": database, "events": events, "concurrency": concurrency, "seconds": seconds,
            "rate": events / seconds, "p50_ms": latencies[len(latencies) // 2] * 1000,
            "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000, "max_ms": latencies[-1] * 1000,
            "statuses": {**statuses}, "accepted": accepted, "rows": rows, "lost": accepted - rows,
            "bind_rate": len(bind) / bound_seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--visitors", type=int, default=2000)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], action="append")
    parser.add_argument("--server-workers", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    print(f"# {platform.node()} {platform.processor() or platform.machine()} {os.cpu_count()} cores, "
          f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, load {os.getloadavg()[0]:.1f}")
    print("| database | events | connections | events/s | p50 ms | p99 ms | max ms | answers | rows | lost |")
    print("|---|---:|---:|---:|---:|---:|---:|---|---:|---:|")
    for database in args.database or ["sqlite"]:
        r = run(database, args.events, args.concurrency, args.visitors, args.server_workers)
        answers = ", ".join(f"{code}×{count}" for code, count in sorted(r["statuses"].items()))
        print(f"| {r['database']} | {r['events']:,} | {r['concurrency']} | {r['rate']:,.0f} | {r['p50_ms']:.1f} | "
              f"{r['p99_ms']:.1f} | {r['max_ms']:.0f} | {answers} | {r['rows']:,} | {r['lost']} |", flush=True)
    print(f"# load after {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()

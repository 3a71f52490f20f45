"""Storefront event ingest through the real endpoint: `okaeri serve` in its own process, a client
in another posting events over loopback HTTP keep-alive connections, as browsers' beacons arrive.

The shop's visitors are bound to customers first (one event each carrying the signed proof a mail
link gives), then the measured phase posts product views from those visitors — each one a row
(`browse_events`). Rate limits are on, raised for the bench's event key
(`OKAERI_RATE_LIMIT_RAISED_KEYS`), as issue 18 asks. After the run the rows are counted: every
202 must be a row.

    python -m bench.events [--events 20000] [--concurrency 64] [--visitors 2000] [--database sqlite|postgresql]
                           [--server-workers 1]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import func, select, text
from sqlmodel import SQLModel

from bench.host import header
from bench.shopgen import idle_cart_shop
from plugin.demo.mailcatcher import free_port
from plugin.runtime import build_runtime
from plugin.settings import Settings
from plugin.storage.db import make_engine
from plugin.storage.models import BrowseEvent, Customer, Product

SECRET = "bench-secret-key-0123456789abcdef0123456789"
PG = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")  # several web processes share a broker
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
    """Post every body with `concurrency` keep-alive connections; put (seconds, latencies, statuses)
    on `out`. A minimal HTTP/1.1 client on asyncio streams, as a load generator (wrk, hey) is: the
    requests are built beforehand and each answer is read by its Content-Length, so the client's
    own CPU per request stays a small fraction of the server's (httpx's pool cost ~5 ms a request
    here, more than the server it measured)."""
    target = urlsplit(url)
    host, port = target.hostname or "127.0.0.1", target.port or 80

    def request(body: bytes) -> bytes:
        return (f"POST {target.path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: text/plain\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode() + body

    async def run() -> tuple[float, list[float], dict[int, int]]:
        latencies: list[float] = []
        statuses: dict[int, int] = {}
        queue = iter([request(body) for body in bodies])

        async def one_connection() -> None:
            reader, writer = await asyncio.open_connection(host, port)
            try:
                for raw in queue:
                    started = time.perf_counter()
                    writer.write(raw)
                    head = await reader.readuntil(b"\r\n\r\n")
                    status = int(head[9:12])
                    length = 0
                    for line in head.split(b"\r\n")[1:]:
                        if line[:15].lower() == b"content-length:":
                            length = int(line[15:])
                    if length:
                        await reader.readexactly(length)
                    latencies.append(time.perf_counter() - started)
                    statuses[status] = statuses.get(status, 0) + 1
                    if b"connection: close" in head.lower():
                        writer.close()
                        reader, writer = await asyncio.open_connection(host, port)
            finally:
                writer.close()

        started = time.perf_counter()
        await asyncio.gather(*(one_connection() for _ in range(concurrency)))
        return time.perf_counter() - started, latencies, statuses

    try:
        out.put(asyncio.run(run()))
    except BaseException as exc:  # noqa: BLE001 - the parent reports it instead of waiting forever
        out.put(exc)


WRK_SCRIPT = r"""
local bodies, position, threads = {}, 0, {}
statuses = {}  -- a global: done() reads each thread's copy with thread:get
function setup(thread) table.insert(threads, thread) end
function init(args)
  for line in io.lines(args[1]) do bodies[#bodies + 1] = line end
  position = math.random(#bodies)
end
function request()
  position = position % #bodies + 1
  return wrk.format("POST", nil, {["Content-Type"] = "text/plain"}, bodies[position])
end
function response(status, headers, body) statuses[status] = (statuses[status] or 0) + 1 end
function done(summary, latency, requests)
  local counts = {}
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("statuses")) do counts[tostring(status)] = (counts[tostring(status)] or 0) + n end
  end
  local parts = {}
  for status, n in pairs(counts) do parts[#parts + 1] = string.format('"%s": %d', status, n) end
  io.write(string.format('WRK {"seconds": %f, "p50_ms": %f, "p99_ms": %f, "max_ms": %f, "errors": %d, "statuses": {%s}}\n',
    summary.duration / 1e6, latency:percentile(50) / 1e3, latency:percentile(99) / 1e3, latency.max / 1e3,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    table.concat(parts, ", ")))
end
"""


def _post_wrk(url: str, bodies: list[bytes], concurrency: int, seconds: float, workdir: Path) -> dict[str, Any]:
    """Post the bodies round-robin for `seconds` with wrk (a load generator in C: two threads,
    `concurrency` keep-alive connections), so the client costs the 2-core machine a few percent
    of a core instead of the third of it a Python client took. Returns wrk's own summary."""
    (workdir / "bodies.txt").write_bytes(b"\n".join(bodies) + b"\n")
    (workdir / "post.lua").write_text(WRK_SCRIPT)
    out = subprocess.run(["wrk", "-t", "2", "-c", str(concurrency), "-d", f"{seconds:.0f}s", "--timeout", "10s",
                          "-s", str(workdir / "post.lua"), url, "--", str(workdir / "bodies.txt")],
                         capture_output=True, text=True)
    line = next((line for line in out.stdout.splitlines() if line.startswith("WRK ")), None)
    if out.returncode or line is None:
        raise SystemExit(f"wrk failed ({out.returncode}): {out.stdout[-800:]} {out.stderr[-800:]}")
    return dict(json.loads(line[4:]))


def _post_all(url: str, bodies: list[bytes], concurrency: int) -> tuple[float, list[float], dict[int, int]]:
    queue: Any = multiprocessing.Queue()
    child = multiprocessing.Process(target=_client, args=(url, bodies, concurrency, queue))
    child.start()
    result = queue.get()
    child.join()
    if isinstance(result, BaseException):
        raise SystemExit(f"client failed: {result!r}")
    return result  # type: ignore[no-any-return]


def _cpu_seconds(pid: int) -> float:
    """User + system CPU so far of a process, its threads and its live child processes (the web
    processes of `serve --workers`), from /proc."""
    total = 0.0
    for stat_path in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat_path.read_text()
        except OSError:
            continue
        fields = text.rsplit(")", 1)[1].split()
        if int(stat_path.parent.name) == pid or int(fields[1]) == pid:  # fields[1]: the parent's pid
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


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


def run(database: str, events: int, concurrency: int, visitors: int, server_workers: int, client: str) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="okaeri-events-"))
    url = _database(database, workdir)
    shop_id, people, products = _shop(url, visitors)
    port = free_port()
    env = {**os.environ, "DATABASE_URL": url, "OKAERI_SECRET_KEY": SECRET, "OKAERI_DATA_DIR": str(workdir),
           "OKAERI_RATE_LIMIT_RAISED_KEYS": KEY, "BROKER_URL": "memory://" if server_workers == 1 else REDIS,
           "OKAERI_LOG_LEVEL": "WARNING"}
    server = subprocess.Popen([sys.executable, "-m", "plugin", "serve", "--port", str(port),
                               "--workers", str(server_workers)], env=env,
                              stdout=subprocess.DEVNULL, stderr=(workdir / "server.log").open("wb"))
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
        cpu_before = _cpu_seconds(server.pid)
        if client == "wrk":
            measured = _post_wrk(endpoint, views, concurrency, max(5.0, events / 2000), workdir)
            statuses = {int(code): n for code, n in measured["statuses"].items()}
            seconds, done = measured["seconds"], sum(statuses.values())
            p50, p99, slowest = measured["p50_ms"], measured["p99_ms"], measured["max_ms"]
        else:
            seconds, latencies, statuses = _post_all(endpoint, views, concurrency)
            latencies.sort()
            done = len(latencies)
            p50, p99 = latencies[len(latencies) // 2] * 1000, latencies[int(len(latencies) * 0.99)] * 1000
            slowest = latencies[-1] * 1000
        server_cpu = _cpu_seconds(server.pid) - cpu_before
        time.sleep(1)  # wrk stops with requests in flight: let the server answer and store them
    finally:
        server.terminate()
        server.wait(timeout=60)
    engine = make_engine(url)
    with engine.connect() as connection:
        rows = connection.execute(select(func.count()).select_from(BrowseEvent).where(
            BrowseEvent.shop_id == shop_id)).scalar_one()
    engine.dispose()
    if database == "postgresql":  # the run's own schema, counted: nothing of it is kept
        admin = make_engine(PG)
        with admin.begin() as connection:
            connection.execute(text(f"DROP SCHEMA IF EXISTS bench_events_{os.getpid()} CASCADE"))
        admin.dispose()
    accepted = statuses.get(202, 0) + bound_statuses.get(202, 0)
    # A request wrk abandoned at the end may still have been stored: rows ≥ answers, never fewer.
    return {"database": database, "events": done, "concurrency": concurrency, "seconds": seconds,
            "rate": done / seconds, "p50_ms": p50, "p99_ms": p99, "max_ms": slowest, "client": client,
            "statuses": {**statuses}, "accepted": accepted, "rows": rows, "lost": max(0, accepted - rows),
            "bind_rate": len(bind) / bound_seconds, "server_cpu_ms": server_cpu / done * 1000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--visitors", type=int, default=2000)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], action="append")
    parser.add_argument("--client", choices=["wrk", "python"], default="wrk" if shutil.which("wrk") else "python",
                        help="the load generator: wrk (Debian's wrk, when installed) or the asyncio one here")
    parser.add_argument("--server-workers", type=int, default=1,
                        help="web processes (`okaeri serve --workers`); above 1 they share the Redis broker")
    args = parser.parse_args()
    print(f"# {header()}")
    print(f"# client: {args.client}")
    print("| database | web processes | events | connections | events/s | p50 ms | p99 ms | max ms | server CPU ms/event "
          "| answers | rows | lost |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|")
    for database in args.database or ["sqlite"]:
        r = run(database, args.events, args.concurrency, args.visitors, args.server_workers, args.client)
        answers = ", ".join(f"{code}×{count}" for code, count in sorted(r["statuses"].items()))
        print(f"| {r['database']} | {args.server_workers} | {r['events']:,} | {r['concurrency']} | {r['rate']:,.0f} | {r['p50_ms']:.1f} | "
              f"{r['p99_ms']:.1f} | {r['max_ms']:.0f} | {r['server_cpu_ms']:.2f} | {answers} | {r['rows']:,} | {r['lost']} |", flush=True)
    print(f"# load after {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()

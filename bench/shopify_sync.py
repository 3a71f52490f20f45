"""Shopify bulk JSONL: read + map rate and peak memory at two sizes (issue 15 figure, first half).

Writes a bulk export shaped like Shopify's (orders with `__parentId` line items, grouped; products
with variants; customers) of N lines to a temp file, then, in a fresh process per size, streams it
through `connectors.shopify.bulk.read_grouped` and `connectors.shopify.mapping` into the neutral
records the sync stores. Prints lines/s and the process's peak RSS; the figure asks ≥ 50,000
lines/s and memory flat between 100,000 and 1,000,000 lines.

Then an incremental sync of customers and orders through `ShopifyConnector` against the sandbox
Admin API (plugin/demo/sandbox/shopify_admin.py, its own process, a 2,000-point bucket restoring
100 points/s × `--time-scale`): the cost points the sandbox metered as a share of what the budget
allowed over the run (the full bucket at the start + restore × elapsed); the figure asks ≥ 90 %.

Then parse + store (`--store`): the same lines written as Shopify's bulk operations write them, one
file per resource (customers with consent, products with variants and inventory, orders with line
items), read by a connector streaming each file and stored by the real first sync
(`plugin.sync.store.sync_shop`, batches of 500) into a fresh SQLite file (or the PostgreSQL
database of `--database-url`), in a fresh process per size: lines/s over the whole sync and peak RSS.

    python -m bench.shopify_sync [--sizes 100000 1000000] [--time-scale 5] [--store [--database-url URL]]
"""
from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.host import header


def write_export(path: Path, lines: int, seed: int = 7) -> None:
    """A grouped export: ~10 % customers, ~5 % products + variants, the rest orders + line items."""
    rng = random.Random(seed)
    written, n = 0, 0
    with path.open("w") as out:
        while written < lines:
            n += 1
            kind = rng.random()
            if kind < 0.10:
                out.write(json.dumps({"id": f"gid://shopify/Customer/{n}", "email": f"c{n}@example.jp",
                                      "firstName": "花子", "lastName": "山田", "updatedAt": "2026-11-30T00:00:00Z",
                                      "emailMarketingConsent": {"marketingState": "SUBSCRIBED"}}) + "\n")
                written += 1
            elif kind < 0.15:
                out.write(json.dumps({"id": f"gid://shopify/Product/{n}", "title": f"商品 {n}", "handle": f"item-{n}",
                                      "status": "ACTIVE", "productType": "お茶", "updatedAt": "2026-11-30T00:00:00Z",
                                      "featuredImage": {"url": f"https://cdn.shopify.com/{n}.jpg"}}) + "\n")
                for v in range(rng.randint(1, 3)):
                    out.write(json.dumps({"id": f"gid://shopify/ProductVariant/{n}{v}", "sku": f"SKU-{n}-{v}",
                                          "price": f"{rng.randint(300, 9000)}", "inventoryQuantity": rng.randint(-1, 40),
                                          "__parentId": f"gid://shopify/Product/{n}"}) + "\n")
                written += 1 + v + 1
            else:
                out.write(json.dumps({"id": f"gid://shopify/Order/{n}", "createdAt": "2026-11-01T03:00:00Z",
                                      "updatedAt": "2026-11-02T03:00:00Z", "cancelledAt": None,
                                      "customer": {"id": f"gid://shopify/Customer/{rng.randint(1, n)}"},
                                      "currentTotalPriceSet": {"shopMoney": {"amount": "2560.0", "currencyCode": "JPY"}}})
                          + "\n")
                count = rng.randint(1, 4)
                for li in range(count):
                    out.write(json.dumps({"id": f"gid://shopify/LineItem/{n}{li}", "name": "ほうじ茶", "quantity": 1,
                                          "product": {"id": f"gid://shopify/Product/{rng.randint(1, n)}"},
                                          "originalUnitPriceSet": {"shopMoney": {"amount": "1280.0", "currencyCode": "JPY"}},
                                          "__parentId": f"gid://shopify/Order/{n}"}) + "\n")
                written += 1 + count


def read_export(path: str) -> None:
    """Child process: stream the file into records; print lines, seconds, peak RSS (MiB) as JSON."""
    from connectors.shopify import mapping
    from connectors.shopify.bulk import read_grouped

    records = lines = 0
    started = time.perf_counter()
    with open(path, "rb") as source:
        for item in read_grouped(source):
            kind = item.kind
            if kind == "Order":
                mapping.order(item)
            elif kind == "Product":
                mapping.product(item, "https://shop.example")
            else:
                mapping.customer(item.data)
            records += 1
    seconds = time.perf_counter() - started
    with open(path, "rb") as source:
        lines = sum(1 for _ in source)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"lines": lines, "records": records, "seconds": seconds, "peak_mib": peak}))


def split_export(path: Path) -> dict[str, Path]:
    """The export as Shopify's bulk operations deliver it: one grouped file per resource."""
    kinds = {"Customer": "customers", "Product": "products", "ProductVariant": "products", "Order": "orders",
             "LineItem": "orders"}
    files = {resource: path.with_name(f"{path.stem}-{resource}.jsonl") for resource in set(kinds.values())}
    outs = {resource: target.open("w") for resource, target in files.items()}
    try:
        with path.open() as source:
            for line in source:
                kind = line.split('"gid://shopify/', 1)[1].split("/", 1)[0]
                outs[kinds[kind]].write(line)
    finally:
        for out in outs.values():
            out.close()
    return files


def store_export(files_json: str, database_url: str) -> None:
    """Child process: a first sync of one shop whose connector streams the per-resource files; print JSON."""
    from collections.abc import Iterator
    from datetime import UTC, datetime

    from sqlalchemy import func, select
    from sqlmodel import Session, SQLModel

    import plugin.storage.models  # noqa: F401
    from connectors.base import CustomerRecord, OrderRecord, ProductRecord, ShopConnector
    from connectors.shopify import mapping
    from connectors.shopify.bulk import read_grouped
    from plugin.storage.db import make_engine
    from plugin.storage.models import ConsentRecord, Customer, InstallState, Order, OrderLine, Product, Shop
    from plugin.sync.store import sync_shop

    files = json.loads(files_json)

    class FileConnector(ShopConnector):
        def _objects(self, resource: str) -> Iterator[object]:
            with open(files[resource], "rb") as source:
                yield from read_grouped(source)

        def iter_customers(self, updated_since: datetime | None) -> Iterator[CustomerRecord]:
            return (mapping.customer(item.data) for item in self._objects("customers"))  # type: ignore[attr-defined]

        def iter_products(self, updated_since: datetime | None) -> Iterator[ProductRecord]:
            return (mapping.product(item, "https://shop.example") for item in self._objects("products"))  # type: ignore[arg-type]

        def iter_orders(self, updated_since: datetime | None, history_start: datetime) -> Iterator[OrderRecord]:
            return (mapping.order(item) for item in self._objects("orders"))  # type: ignore[arg-type]

    engine = make_engine(database_url)
    SQLModel.metadata.drop_all(engine)
    SQLModel.metadata.create_all(engine)
    now = datetime(2026, 12, 1, tzinfo=UTC)
    with Session(engine, expire_on_commit=False) as session:
        shop = Shop(platform="shopify", external_id=DOMAIN, state=InstallState.active, created_at=now)
        session.add(shop)
        session.commit()
        started, cpu_started = time.perf_counter(), time.process_time()
        counts = sync_shop(session, shop, FileConnector(), now, full=True)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        held = {name: session.execute(select(func.count()).select_from(model)).scalar_one()
                for name, model in (("customers", Customer), ("products", Product), ("orders", Order),
                                    ("order_lines", OrderLine), ("consent_records", ConsentRecord))}
    lines = 0
    for target in files.values():
        with open(target, "rb") as source:
            lines += sum(1 for _ in source)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"lines": lines, "records": sum(counts.values()), "seconds": seconds, "cpu": cpu, "peak_mib": peak,
                      "held": held, "dialect": engine.dialect.name}))
    engine.dispose()


def serve_sandbox(port: int, customers: int, orders: int, time_scale: float) -> None:
    """Child process: the sandbox Admin API for one generated shop."""
    import uvicorn

    from plugin.demo.sandbox.shopify_admin import create_shopify_sandbox_app, generate_shop

    shop = generate_shop(DOMAIN, TOKEN, customers=customers, products=200, orders=orders)
    uvicorn.run(create_shopify_sandbox_app({DOMAIN: shop}, time_scale=time_scale), host="127.0.0.1", port=port,
                log_level="warning")


DOMAIN, TOKEN = "bench-tea.myshopify.com", "shpat_bench"


def incremental(customers: int, orders: int, time_scale: float) -> None:
    """Start the sandbox, page every customer and order changed in the last year, print the share."""
    from datetime import UTC, datetime, timedelta

    import httpx

    from connectors.shopify.connector import ShopifyConnector
    from connectors.shopify.graphql import GraphQLClient
    from plugin.demo.mailcatcher import free_port

    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "bench.shopify_sync", "--serve", str(port), "--customers",
                               str(customers), "--orders", str(orders), "--time-scale", str(time_scale)])
    base = f"http://127.0.0.1:{port}/{DOMAIN}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{base}/_stats", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        now = datetime.now(UTC)
        client = GraphQLClient(DOMAIN, lambda: TOKEN, api_base=base)
        connector = ShopifyConnector(client, now)
        print("| resource | records | seconds | points used | budget allowed | share | refused | client waited s |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        before = httpx.get(f"{base}/_stats").json()
        for resource in ("customers", "orders"):
            started = time.perf_counter()
            since = now - timedelta(days=366)
            rows = (connector.iter_customers(since) if resource == "customers"
                    else connector.iter_orders(since, now - timedelta(days=800)))
            count = sum(1 for _ in rows)
            seconds = time.perf_counter() - started
            after = httpx.get(f"{base}/_stats").json()
            used = after["points_used"] - before["points_used"]
            # what the budget allowed over this pass: the points in the bucket when it began + the restore
            allowed = before["available"] + after["restore"] * seconds
            print(f"| {resource} | {count:,} | {seconds:.1f} | {used:,.0f} | {allowed:,.0f} | {used / allowed:.1%} "
                  f"| {after['throttled'] - before['throttled']} | {client.waited:.1f} |")
            before = after
        connector.close()
    finally:
        server.terminate()
        server.wait(10)


def store_bench(sizes: list[int], database_url: str) -> None:
    """Parse + store each size in a fresh process; one table row per size."""
    print(f"# {header()}")
    print("| lines | records | database | seconds | lines/s | CPU s | lines per CPU s | peak RSS MiB | load (1 min) |\n"
          "|---:|---:|---|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            path = Path(tmp) / f"export-{size}.jsonl"
            write_export(path, size)
            files = {k: str(v) for k, v in split_export(path).items()}
            url = database_url or f"sqlite:///{Path(tmp) / f'store-{size}.db'}"
            load = os.getloadavg()[0]
            out = subprocess.run([sys.executable, "-m", "bench.shopify_sync", "--store-child", json.dumps(files),
                                  "--database-url", url], check=True, capture_output=True, text=True).stdout
            r = json.loads(out.strip().splitlines()[-1])
            print(f"| {r['lines']:,} | {r['records']:,} | {r['dialect']} | {r['seconds']:.1f} | "
                  f"{r['lines'] / r['seconds']:,.0f} | {r['cpu']:.1f} | {r['lines'] / r['cpu']:,.0f} | "
                  f"{r['peak_mib']:.0f} | {load:.1f}–{os.getloadavg()[0]:.1f} |")
            print(f"<!-- held {r['held']} -->")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--time-scale", type=float, default=5.0)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--orders", type=int, default=4_000)
    parser.add_argument("--store", action="store_true", help="parse + store only (the first sync's store half)")
    parser.add_argument("--database-url", default="", help="PostgreSQL for --store (default: a temp SQLite file)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--store-child", help=argparse.SUPPRESS)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        read_export(args.child)
        return
    if args.store_child:
        store_export(args.store_child, args.database_url)
        return
    if args.store:
        store_bench(args.sizes, args.database_url)
        return
    if args.serve:
        serve_sandbox(args.serve, args.customers, args.orders, args.time_scale)
        return
    print(f"# {header()}")
    print("| lines | records | seconds | lines/s | peak RSS MiB |\n|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            path = Path(tmp) / f"export-{size}.jsonl"
            write_export(path, size)
            out = subprocess.run([sys.executable, "-m", "bench.shopify_sync", "--child", str(path)],
                                 check=True, capture_output=True, text=True).stdout
            r = json.loads(out)
            print(f"| {r['lines']:,} | {r['records']:,} | {r['seconds']:.2f} | {r['lines'] / r['seconds']:,.0f} "
                  f"| {r['peak_mib']:.0f} |")
    print(f"\nIncremental sync against the throttled sandbox (time scale {args.time_scale:g}: "
          f"restore {100 * args.time_scale:,.0f} points/s), load {os.getloadavg()[0]:.1f}")
    incremental(args.customers, args.orders, args.time_scale)


if __name__ == "__main__":
    main()

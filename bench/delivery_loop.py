"""CPU per delivered message of delivery's whole path, without the broker and its threads:
`deliver_batch` (claim, marks check, gates, render, MIME, SMTP to a local sink, marks, settle,
rollup) called in a loop on one thread, batches of 50, over the same 10,000 cart reminders as
bench/outbox.py. Process CPU (every thread of this process: the lease heartbeats too), best of
`--passes`; also the PostgreSQL backend's CPU. One thread and no broker: the figure moves much
less with the machine's load than msg/s does, and is what an ablation should change.

    python -m bench.delivery_loop [--messages 10000] [--pairs postgresql+redis,sqlite+memory] [--passes 3]

Uses only what old main (a085741) also has, so the same file runs in a checkout of it.
"""
from __future__ import annotations

import argparse
import cProfile
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, select, text, update
from sqlmodel import SQLModel, col

from bench.delivery_profile import backends
from bench.host import header
from bench.shopgen import idle_cart_shop
from plugin.clock import daytime_zone
from plugin.delivery.batch import deliver_batch
from plugin.demo.mailcatcher import free_port
from plugin.engine.tick import run_shop_tick
from plugin.jobs.broker import build_broker
from plugin.runtime import build_runtime
from plugin.settings import Settings
from plugin.storage.db import make_engine
from plugin.storage.models import Message, MessageStatus, ScenarioSetting, Shop
from plugin.storage.outbox import analyze_if_grown, high_water

SECRET = "bench-secret-key-0123456789abcdef0123456789"
PG = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
BATCH = 50
APP = "okaeri_bench_loop"


def run_pair(pair: str, messages: int, smtp_port: int, passes: int, profile: str | None = None,
             count_statements: bool = False) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="okaeri-bench-"))
    admin, schema = None, None
    if pair.startswith("sqlite"):
        url = f"sqlite:///{workdir / 'bench.db'}"
    else:
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(PG.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
        url = f"{PG}?options=-csearch_path%3D{schema}&application_name={APP}"
    namespace = f"okaeri-bench-{uuid.uuid4().hex[:6]}"
    broker_url = "memory://" if pair.endswith("memory") else REDIS
    try:
        engine = make_engine(url)
        SQLModel.metadata.create_all(engine)
        settings = Settings(OKAERI_DATA_DIR=workdir, DATABASE_URL=url, OKAERI_SECRET_KEY=SECRET, OKAERI_SMTP_PORT=smtp_port,
                            OKAERI_REDIS_NAMESPACE=namespace)  # type: ignore[call-arg]
        runtime = build_runtime(settings, engine=engine, broker=build_broker(broker_url, namespace=namespace))
        shop_id = idle_cart_shop(engine, messages, runtime.clock.now(), SECRET)
        with engine.begin() as conn:
            conn.execute(update(Shop).values(timezone=daytime_zone()))
            conn.execute(update(ScenarioSetting).values(holdout_percent=0))
        with runtime.sessions() as session:
            since = high_water(session)
        run_shop_tick(runtime, shop_id)
        with runtime.sessions() as session:
            analyze_if_grown(session, since)
            ids = list(session.execute(select(col(Message.id)).order_by(col(Message.id))).scalars())
        statements: Counter[str] = Counter()
        if count_statements:
            event.listen(engine, "before_cursor_execute",
                         lambda _c, _cur, sql, *_: statements.update([" ".join(sql.split())[:100]]))
        for n in range(passes):
            with engine.begin() as conn:
                conn.execute(update(Message).values(status=MessageStatus.pending, attempts=0, sent_at=None, lease_until=None))
            load = os.getloadavg()[0]
            pg0 = backends(admin, APP) if admin is not None else {}
            cpu0, thread0, wall0 = time.process_time(), time.thread_time(), time.perf_counter()
            sent = 0
            profiler = cProfile.Profile(time.thread_time) if profile and n == passes - 1 else None
            if profiler is not None:
                profiler.enable()
            for start in range(0, len(ids), BATCH):
                outcomes = deliver_batch(runtime, ids[start:start + BATCH])
                sent += sum(1 for outcome, _ in outcomes.values() if outcome == "sent")
            if profiler is not None:
                profiler.disable()
                profiler.dump_stats(f"{profile}.{pair}")
            cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
            thread = time.thread_time() - thread0
            pg1 = backends(admin, APP) if admin is not None else {}
            pg = sum(v - pg0.get(pid, 0.0) for pid, v in pg1.items()) if admin is not None else None
            pg_text = f"{pg / sent * 1e6:.0f}" if pg is not None else "-"
            print(f"| {time.strftime('%H:%M', time.gmtime())} | {pair} | {n + 1} | {sent} | {sent / wall:.0f} | "
                  f"{cpu / sent * 1e6:.0f} | {thread / sent * 1e6:.0f} | {pg_text} | {load:.1f} → {os.getloadavg()[0]:.1f} |", flush=True)
        for sql, times in statements.most_common():
            print(f"    {times / passes / (len(ids) / BATCH):6.2f} per batch  {sql}")
        runtime.close()
    finally:
        if admin is not None:
            with admin.connect() as conn:
                conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
            admin.dispose()


def _ablate(parts: set[str]) -> None:
    """Switch parts of issue 12's delivery off, to see what each costs (never in the product)."""
    from contextlib import nullcontext

    from plugin.delivery import batch
    from plugin.storage import outbox, rollup

    if "heartbeat" in parts:
        class NoHeartbeat(nullcontext):  # type: ignore[type-arg]
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(self)

            def held(self) -> bool:
                return True

        batch.LeaseHeartbeat = NoHeartbeat  # type: ignore[attr-defined,misc,assignment]
    if "marks" in parts:
        class NoMarks:
            def send(self, *args: Any) -> Any:
                return self

            def wait(self) -> None:
                return None

            def accepted(self, ids: Any) -> dict[int, Any]:
                return {}

            def forget(self, ids: Any) -> None:
                return None

        none = NoMarks()
        batch.marks_for = lambda runtime: none  # type: ignore[attr-defined,assignment,return-value]
    if "rollup" in parts:
        outbox.settling = lambda session, rows: None  # type: ignore[attr-defined,assignment]
        if hasattr(outbox, "settling_counts"):
            outbox.settling_counts = lambda session, rows: ({}, {})  # type: ignore[attr-defined]
        rollup.settling = outbox.settling  # type: ignore[assignment]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--pairs", default="postgresql+redis,sqlite+memory")
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--profile", help="cProfile the last pass into PROFILE.<pair> (its CPU figure then includes the profiler)")
    parser.add_argument("--statements", action="store_true", help="count the SQL statements per batch")
    parser.add_argument("--ablate", default="", help="comma-separated parts to switch off (this branch only): "
                        "heartbeat, marks, rollup — an ablation, not a product setting")
    args = parser.parse_args()
    _ablate({part for part in args.ablate.split(",") if part})
    smtp_port = free_port()
    sink = subprocess.Popen([sys.executable, "-m", "bench.smtp_sink", str(smtp_port)], stdout=subprocess.PIPE, text=True)
    assert sink.stdout is not None and sink.stdout.readline().strip() == "ready"
    try:
        print(f"# {header()}; {args.messages} messages, "
              f"one thread, batches of {BATCH}; cwd {os.getcwd()}")
        print("| UTC | pair | pass | sent | msg/s | process CPU µs/msg | of which this thread | PG backend µs/msg | load |")
        print("|---|---|---:|---:|---:|---:|---:|---:|---|")
        for pair in args.pairs.split(","):
            run_pair(pair, args.messages, smtp_port, args.passes, args.profile, args.statements)
    finally:
        sink.kill()


if __name__ == "__main__":
    main()

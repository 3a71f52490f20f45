"""Outbox throughput for 10k messages on each storage/broker pair.

(a) render + write: one scenario tick that selects 10k idle carts, gates them, renders each
    reminder (Jinja2, ja) and writes the outbox rows;
(b) deliver: the broker hands every row to worker threads that claim, build MIME and send it
    over SMTP to a local server in its own process, then settle the row.

    python -m bench.outbox [--messages 10000] [--threads 8] [--pairs sqlite+memory,postgresql+redis]
"""
from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import create_engine, func, select, text
from sqlmodel import SQLModel

from bench.shopgen import idle_cart_shop
from plugin.db import make_engine
from plugin.engine import run_shop_tick
from plugin.mailcatcher import free_port
from plugin.models import Message, MessageStatus
from plugin.queue import build_broker
from plugin.runtime import build_runtime
from plugin.settings import Settings
from plugin.worker import start_worker

SECRET = "bench-secret-key-0123456789abcdef0123456789"
PG = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")


def _database(pair: str, workdir: Path) -> tuple[str, object]:
    if pair.startswith("sqlite"):
        return f"sqlite:///{workdir / 'bench.db'}", None
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    return f"{PG}?options=-csearch_path%3D{schema}", (admin, schema)


def _drop(handle: object) -> None:
    if handle:
        admin, schema = handle  # type: ignore[misc]
        with admin.connect() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def run_pair(pair: str, messages: int, threads: int) -> dict[str, object]:
    workdir = Path(tempfile.mkdtemp(prefix="okaeri-bench-"))
    url, handle = _database(pair, workdir)
    smtp_port = free_port()
    sink = subprocess.Popen([sys.executable, "-m", "bench.smtp_sink", str(smtp_port)],
                            stdout=subprocess.PIPE, text=True)
    assert sink.stdout is not None and sink.stdout.readline().strip() == "ready"
    broker_url = "memory://" if pair.endswith("memory") else REDIS
    try:
        engine = make_engine(url)
        SQLModel.metadata.create_all(engine)
        settings = Settings(OKAERI_DATA_DIR=workdir, DATABASE_URL=url, OKAERI_SECRET_KEY=SECRET,
                            OKAERI_SMTP_PORT=smtp_port, OKAERI_WORKER_THREADS=threads)  # type: ignore[call-arg]
        broker = build_broker(broker_url, namespace=f"okaeri-bench-{uuid.uuid4().hex[:6]}")
        runtime = build_runtime(settings, engine=engine, broker=broker)
        shop_id = idle_cart_shop(engine, messages, runtime.clock.now(), SECRET)

        started = time.perf_counter()
        written = run_shop_tick(runtime, shop_id)
        write_seconds = time.perf_counter() - started
        assert len(written) == messages, (len(written), messages)

        worker = start_worker(runtime, threads)
        started = time.perf_counter()
        now = runtime.clock.now()
        for message_id, due in written:
            runtime.actors.enqueue_delivery(message_id, due, now)
        sent = 0
        while sent < messages and time.perf_counter() - started < 900:
            time.sleep(0.25)
            with engine.connect() as conn:
                sent = conn.execute(select(func.count()).where(Message.status == MessageStatus.sent)).scalar_one()
        deliver_seconds = time.perf_counter() - started
        worker.stop()
        if hasattr(broker, "flush_all"):
            broker.flush_all()
        runtime.close()
        return {"pair": pair, "messages": messages, "write_s": write_seconds, "write_rate": messages / write_seconds,
                "deliver_s": deliver_seconds, "deliver_rate": sent / deliver_seconds, "sent": sent}
    finally:
        sink.kill()
        _drop(handle)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--pairs", default="sqlite+memory,postgresql+redis")
    args = parser.parse_args()
    print(f"# {platform.node()} {platform.processor() or platform.machine()} {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, {time.strftime('%Y-%m-%d')}; worker threads {args.threads}")
    print("| pair | messages | render+write s | render+write msg/s | deliver s | deliver msg/s | sent |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for pair in args.pairs.split(","):
        r = run_pair(pair, args.messages, args.threads)
        print(f"| {r['pair']} | {r['messages']} | {r['write_s']:.1f} | {r['write_rate']:.0f} | "
              f"{r['deliver_s']:.1f} | {r['deliver_rate']:.0f} | {r['sent']} |", flush=True)


if __name__ == "__main__":
    main()

"""CPU seconds per delivered message: what `bench/outbox.py` delivers, measured in CPU rather
than msg/s, so that it moves little with the machine's load (other processes take the cores, not
the instructions).

The same shop and messages as bench/outbox.py (10,000 cart reminders, one tick), then for each
storage/broker pair:
  postgresql+redis  1 and 2 `okaeri worker` processes (each with `--threads`); measured: the
                    worker processes' user+system CPU (/proc/PID/stat, every thread, from the
                    moment the workers are up until the last message is sent) and that of their
                    PostgreSQL backends (pg_stat_activity by application_name), per sent message
  sqlite+memory     in-process worker threads (what `okaeri demo` runs); measured: this process's
                    CPU over the delivery (it also polls the count every 0.2 s; the same on both sides)
"net of idle": less the CPU the same processes used per second while idle (measured for 3 s
just before) times the delivery's wall time — the part that grows with the wall time rather
than with the messages (on a loaded machine a slower run polls longer). Also the voluntary
context switches per message of the worker processes' threads (each a wait for another
process: SMTP, Redis, PostgreSQL), and the load average before and after.

    python -m bench.delivery_profile [--messages 10000] [--pairs postgresql+redis] [--workers 1,2] [--rounds 1]

Uses only what old main (a085741) also has, so the same file runs in a checkout of it.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, func, select, text, update
from sqlmodel import SQLModel

from bench.host import header
from bench.shopgen import idle_cart_shop
from plugin.clock import daytime_zone
from plugin.demo.mailcatcher import free_port
from plugin.engine.tick import run_shop_tick
from plugin.jobs.broker import build_broker
from plugin.jobs.worker import start_worker
from plugin.runtime import build_runtime
from plugin.settings import Settings
from plugin.storage.db import make_engine
from plugin.storage.models import Message, MessageStatus, ScenarioSetting, Shop
from plugin.storage.outbox import analyze_if_grown, high_water

SECRET = "bench-secret-key-0123456789abcdef0123456789"
PG = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
APP = "okaeri_bench_worker"
TICK = os.sysconf("SC_CLK_TCK")
IDLE = 3.0  # seconds of idle workers measured before each delivery


def cpu_of(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads, living or ended), 0 if gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime (fields 14, 15 of stat)


def switches_of(pid: int) -> int:
    """Voluntary context switches of every living thread of a process."""
    total = 0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0
    for task in tasks:
        try:
            for line in Path(f"/proc/{pid}/task/{task}/status").read_text().splitlines():
                if line.startswith("voluntary_ctxt_switches"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total


def backends(admin: Any, app: str = APP) -> dict[int, float]:
    """PostgreSQL backends of the bench's workers (`application_name`) → their CPU seconds so far."""
    with admin.connect() as connection:
        pids = [r[0] for r in connection.execute(text("SELECT pid FROM pg_stat_activity WHERE application_name = :a"),
                                                 {"a": app})]
    return {pid: cpu_of(pid) for pid in pids}


def _settled(pids: list[int], limit: float = 30.0) -> None:
    """Wait until these processes are idle (their start-up CPU is not counted)."""
    time.sleep(2)
    started, last = time.perf_counter(), sum(cpu_of(pid) for pid in pids)
    while time.perf_counter() - started < limit:
        time.sleep(0.5)
        now = sum(cpu_of(pid) for pid in pids)
        if now - last < 0.03 * len(pids):
            return
        last = now


def _wait_sent(engine: Any, messages: int, limit: float = 1200) -> tuple[int, float]:
    started = time.perf_counter()
    sent = 0
    while sent < messages and time.perf_counter() - started < limit:
        time.sleep(0.2)
        with engine.connect() as conn:
            sent = conn.execute(select(func.count()).where(Message.status == MessageStatus.sent)).scalar_one()
    return sent, time.perf_counter() - started


def _reset(engine: Any) -> list[tuple[int, Any]]:
    with engine.begin() as conn:
        conn.execute(update(Message).values(status=MessageStatus.pending, attempts=0, sent_at=None, lease_until=None))
        return [(r[0], r[1]) for r in conn.execute(select(Message.id, Message.scheduled_at))]


def run_pair(pair: str, messages: int, threads: int, smtp_port: int, workers: list[int], rounds: int) -> list[dict[str, Any]]:
    workdir = Path(tempfile.mkdtemp(prefix="okaeri-bench-"))
    admin, schema = None, None
    if pair.startswith("sqlite"):
        url = f"sqlite:///{workdir / 'bench.db'}"
    else:
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(PG.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
        url = f"{PG}?options=-csearch_path%3D{schema}"
    namespace = f"okaeri-bench-{uuid.uuid4().hex[:6]}"
    broker_url = "memory://" if pair.endswith("memory") else REDIS
    env = {**os.environ, "DATABASE_URL": f"{url}&application_name={APP}" if schema else url, "BROKER_URL": broker_url,
           "OKAERI_SECRET_KEY": SECRET, "OKAERI_SMTP_PORT": str(smtp_port), "OKAERI_REDIS_NAMESPACE": namespace,
           "OKAERI_WORKER_THREADS": str(threads)}
    rows = []
    try:
        engine = make_engine(url)
        SQLModel.metadata.create_all(engine)
        settings = Settings(OKAERI_DATA_DIR=workdir, DATABASE_URL=url, OKAERI_SECRET_KEY=SECRET, OKAERI_SMTP_PORT=smtp_port,
                            OKAERI_WORKER_THREADS=threads, OKAERI_REDIS_NAMESPACE=namespace)  # type: ignore[call-arg]
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
        for _ in range(rounds):
            for processes in ([0] if pair.endswith("memory") else workers):
                ids = _reset(engine)
                procs, worker = [], None
                load_before = os.getloadavg()[0]
                if processes == 0:
                    worker = start_worker(runtime, threads)
                    pids = [os.getpid()]
                else:
                    procs = [subprocess.Popen([sys.executable, "-m", "plugin", "worker", "--threads", str(threads)], env=env)
                             for _ in range(processes)]
                    pids = [p.pid for p in procs]
                    _settled(pids)  # workers imported, connected and declared their queues
                idle0 = sum(cpu_of(pid) for pid in pids)
                time.sleep(IDLE)  # the workers' CPU while idle (their consumers poll the broker)
                idle = (sum(cpu_of(pid) for pid in pids) - idle0) / IDLE
                cpu0 = {pid: cpu_of(pid) for pid in pids}
                sw0 = {pid: switches_of(pid) for pid in pids}
                pg0 = backends(admin) if admin is not None else {}
                runtime.tasks.deliver(ids, runtime.clock.now())
                sent, seconds = _wait_sent(engine, messages)
                cpu = sum(cpu_of(pid) - cpu0[pid] for pid in pids)
                switches = sum(switches_of(pid) - sw0[pid] for pid in pids)
                pg1 = backends(admin) if admin is not None else {}
                pg = sum(v - pg0.get(pid, 0.0) for pid, v in pg1.items())
                if worker:
                    worker.stop()
                for p in procs:
                    p.terminate()
                    p.wait()
                rows.append({"pair": pair, "workers": "in-process" if processes == 0 else f"{processes} process(es)",
                             "sent": sent, "rate": sent / seconds, "cpu_us": cpu / max(sent, 1) * 1e6,
                             "net_us": (cpu - idle * seconds) / max(sent, 1) * 1e6, "idle": idle,
                             "pg_us": pg / max(sent, 1) * 1e6 if admin is not None else None,
                             "switches": switches / max(sent, 1), "load": (load_before, os.getloadavg()[0])})
                _print(rows[-1])
        if hasattr(runtime.broker, "flush_all"):
            runtime.broker.flush_all()
        runtime.close()
    finally:
        if admin is not None:
            with admin.connect() as conn:
                conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
            admin.dispose()
    return rows


def _print(r: dict[str, Any]) -> None:
    pg = f"{r['pg_us']:.0f}" if r["pg_us"] is not None else "-"
    print(f"| {time.strftime('%H:%M', time.gmtime())} | {r['pair']} | {r['workers']} | {r['sent']} | {r['rate']:.0f} | "
          f"{r['cpu_us']:.0f} | {r['idle'] * 1000:.0f} | {r['net_us']:.0f} | {pg} | {r['switches']:.1f} | "
          f"{r['load'][0]:.1f} → {r['load'][1]:.1f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=Settings.model_fields["worker_threads"].default)
    parser.add_argument("--pairs", default="postgresql+redis")
    parser.add_argument("--workers", default="1,2", help="worker process counts for postgresql+redis")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    smtp_port = free_port()
    sink = subprocess.Popen([sys.executable, "-m", "bench.smtp_sink", str(smtp_port)], stdout=subprocess.PIPE, text=True)
    assert sink.stdout is not None and sink.stdout.readline().strip() == "ready"
    try:
        print(f"# {header()}; {args.messages} messages, "
              f"{args.threads} threads per worker; cwd {os.getcwd()}")
        print("| UTC | pair | workers | sent | msg/s | worker CPU µs/msg | idle CPU ms/s | net of idle µs/msg | "
              "PG backends µs/msg | vol. switches/msg | load |")
        print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|")
        for pair in args.pairs.split(","):
            run_pair(pair, args.messages, args.threads, smtp_port, [int(w) for w in args.workers.split(",")], args.rounds)
    finally:
        sink.kill()


if __name__ == "__main__":
    main()

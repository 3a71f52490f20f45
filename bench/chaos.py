"""Kills: delivery of N messages by two worker processes on PostgreSQL + Redis while one of them
is SIGKILLed every 3-6 s and started again, to an SMTP sink that logs every Message-ID it accepts.

Reports: messages lost (never accepted); per kill, the re-sends it caused (mails accepted more
than once, charged to the first kill after the first acceptance) against the bound of one per
worker thread; and the time from each kill until what the killed worker held was delivered —
its claimed rows (every row `sending` at that instant: a superset) and the hand-offs Redis had
given it (its unacked messages, prefetched or delayed).

    python -m bench.chaos [--messages 100000] [--threads 4] [--kill-every 3-6]
"""
from __future__ import annotations

import argparse
import bisect
import json
import os
import platform
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from sqlalchemy import create_engine, func, select, text, update
from sqlmodel import Session, SQLModel, col

from bench.shopgen import idle_cart_shop
from plugin.clock import daytime_zone
from plugin.demo.mailcatcher import free_port
from plugin.engine.tick import run_shop_tick
from plugin.jobs.broker import build_broker
from plugin.runtime import build_runtime
from plugin.settings import Settings
from plugin.storage.db import make_engine
from plugin.storage.models import Message, MessageStatus, ScenarioSetting, Shop, rfc_message_id

SECRET = "bench-secret-key-0123456789abcdef0123456789"
PG = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")


@dataclass
class Kill:
    at: float
    slot: int
    held: set[int] = field(default_factory=set)  # outbox ids the killed worker had (or may have had)


@dataclass
class Worker:
    slot: int
    process: subprocess.Popen[bytes]
    broker_id: str | None = None


class Chaos:
    """The processes of one run and what is known of them."""

    def __init__(self, env: dict[str, str], namespace: str, threads: int, logs: Path) -> None:
        self.env, self.namespace, self.threads, self.logs = env, namespace, threads, logs
        self.redis = redis.Redis.from_url(REDIS)
        self.workers: dict[int, Worker] = {}

    def start(self, slot: int) -> None:
        known = self._broker_ids()
        log = open(self.logs / f"worker-{slot}.log", "ab")  # noqa: SIM115 - the child keeps it
        process = subprocess.Popen([sys.executable, "-m", "plugin", "worker", "--threads", str(self.threads)],
                                   env=self.env, stdout=log, stderr=log)
        self.workers[slot] = Worker(slot, process)
        self._known_before = known

    def learn_broker_ids(self) -> None:
        """A worker's Redis broker id is the heartbeat member that appeared after it started."""
        taken = {w.broker_id for w in self.workers.values() if w.broker_id}
        fresh = [b for b in self._broker_ids() - self._known_before if b not in taken]
        for worker in self.workers.values():
            if worker.broker_id is None and fresh:
                worker.broker_id = fresh.pop()

    def kill(self, slot: int, engine: Any) -> Kill:
        self.learn_broker_ids()
        worker = self.workers[slot]
        held = self._handed_to(worker.broker_id) if worker.broker_id else set()
        with engine.connect() as conn:
            held |= set(conn.execute(select(col(Message.id)).where(col(Message.status) == MessageStatus.sending)).scalars())
        worker.process.send_signal(signal.SIGKILL)
        kill = Kill(time.time(), slot, held)
        worker.process.wait()
        return kill

    def stop_all(self) -> None:
        for worker in self.workers.values():
            worker.process.send_signal(signal.SIGTERM)
        for worker in self.workers.values():
            try:
                worker.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                worker.process.kill()

    def _broker_ids(self) -> set[str]:
        members: list[bytes] = self.redis.zrange(f"{self.namespace}:__heartbeats__", 0, -1)  # type: ignore[assignment]
        return {m.decode() for m in members}

    def _handed_to(self, broker_id: str) -> set[int]:
        ids: set[int] = set()
        for queue in ("delivery", "delivery.DQ"):
            unacked = list(self.redis.smembers(f"{self.namespace}:__acks__.{broker_id}.{queue}"))
            if not unacked:
                continue
            for data in self.redis.hmget(f"{self.namespace}:{queue}.msgs", unacked):
                if data:
                    args = json.loads(data)["args"]
                    ids |= set(args[0] if isinstance(args[0], list) else [args[0]])
        return ids


def _accepted(log: Path) -> dict[str, list[float]]:
    times: dict[str, list[float]] = defaultdict(list)
    for line in log.read_text().splitlines():
        at, message_id = line.split(" ", 1)
        times[message_id].append(float(at))
    return times


def _p(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run(messages: int, threads: int, kill_every: tuple[float, float], limit: float) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="okaeri-chaos-"))
    schema, namespace = f"chaos_{uuid.uuid4().hex[:8]}", f"okaeri-chaos-{uuid.uuid4().hex[:6]}"
    admin = create_engine(PG.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    url = f"{PG}?options=-csearch_path%3D{schema}"
    smtp_port = free_port()
    sink_log = workdir / "accepted.log"
    sink = subprocess.Popen([sys.executable, "-m", "bench.smtp_sink", str(smtp_port), str(sink_log)],
                            stdout=subprocess.PIPE, text=True)
    assert sink.stdout is not None and sink.stdout.readline().strip() == "ready"
    env = {**os.environ, "DATABASE_URL": url, "BROKER_URL": REDIS, "OKAERI_SECRET_KEY": SECRET,
           "OKAERI_SMTP_PORT": str(smtp_port), "OKAERI_REDIS_NAMESPACE": namespace,
           "OKAERI_WORKER_THREADS": str(threads)}
    chaos = Chaos(env, namespace, threads, workdir)
    scheduler = None
    kills: list[Kill] = []
    try:
        engine = make_engine(url)
        SQLModel.metadata.create_all(engine)
        settings = Settings(OKAERI_DATA_DIR=workdir, DATABASE_URL=url, OKAERI_SECRET_KEY=SECRET,
                            OKAERI_SMTP_PORT=smtp_port, OKAERI_REDIS_NAMESPACE=namespace)  # type: ignore[call-arg]
        runtime = build_runtime(settings, engine=engine, broker=build_broker(REDIS, namespace=namespace))
        shop_id = idle_cart_shop(engine, messages, runtime.clock.now(), SECRET)
        with engine.begin() as conn:
            conn.execute(update(Shop).values(timezone=daytime_zone()))
            conn.execute(update(ScenarioSetting).values(holdout_percent=0))
        handed = run_shop_tick(runtime, shop_id)
        print(f"  {len(handed)} messages written; starting workers", flush=True)
        for slot in (0, 1):
            chaos.start(slot)
        # The sweeps (expired leases) come from a scheduler; its full round (ticks) once in 10 minutes.
        scheduler = subprocess.Popen([sys.executable, "-m", "plugin", "scheduler", "--interval", "600"], env=env,
                                     stdout=open(workdir / "scheduler.log", "ab"), stderr=subprocess.STDOUT)  # noqa: SIM115
        time.sleep(3)
        started = time.time()
        runtime.tasks.deliver(handed, runtime.clock.now())  # as the tick actor hands them over
        next_kill = started + random.uniform(*kill_every)
        sent = 0
        while time.time() - started < limit:
            time.sleep(0.2)
            chaos.learn_broker_ids()
            with engine.connect() as conn:
                sent = conn.execute(select(func.count()).where(col(Message.status) == MessageStatus.sent)).scalar_one()
            if sent >= messages:
                break
            if time.time() >= next_kill:
                slot = random.choice((0, 1))
                kills.append(chaos.kill(slot, engine))
                chaos.start(slot)
                next_kill = time.time() + random.uniform(*kill_every)
        elapsed = time.time() - started
        time.sleep(2)  # the sink's last lines
        chaos.stop_all()
        with Session(engine) as session:
            rows = list(session.execute(select(Message)).scalars())
        by_message_id = {rfc_message_id(row): row.id or 0 for row in rows}
        statuses: dict[str, int] = defaultdict(int)
        for row in rows:
            statuses[str(row.status)] += 1
        runtime.broker.flush_all()
        runtime.close()
    finally:
        if scheduler is not None:
            scheduler.terminate()
            scheduler.wait()
        sink.kill()
        chaos.stop_all()
        for key in chaos.redis.scan_iter(f"{namespace}:*"):
            chaos.redis.delete(key)
        with admin.connect() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()
    accepted = _accepted(sink_log)
    delivered_at = {by_message_id[m]: times for m, times in accepted.items() if m in by_message_id}
    lost = messages - len(delivered_at)
    kill_times = [k.at for k in kills]
    charged = [0] * len(kills)
    unattributed = 0
    for times in delivered_at.values():
        if len(times) > 1:  # charged to the first kill after its first acceptance: the one it was in flight at
            n = bisect.bisect_right(kill_times, times[0])
            if n < len(kills):
                charged[n] += len(times) - 1
            else:
                unattributed += len(times) - 1
    per_kill: list[dict[str, Any]] = []
    for n, kill in enumerate(kills):
        waits = [max(0.0, max(delivered_at[i]) - kill.at) for i in kill.held if i in delivered_at]
        per_kill.append({"at": kill.at - started, "slot": kill.slot, "held": len(kill.held), "resent": charged[n],
                         "back_within": max(waits, default=0.0), "waits": waits})
    duplicates = sum(len(t) - 1 for t in delivered_at.values())
    all_waits = [w for k in per_kill for w in k["waits"]]
    return {"messages": messages, "threads": threads, "kills": len(kills), "elapsed": elapsed, "sent": sent,
            "statuses": dict(statuses), "lost": lost, "duplicates": duplicates, "unattributed": unattributed, "per_kill": per_kill,
            "p99_kill": _p([k["back_within"] for k in per_kill], 0.99), "p99_message": _p(all_waits, 0.99),
            "max_message": max(all_waits, default=0.0), "median_message": statistics.median(all_waits) if all_waits else 0.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--threads", type=int, default=Settings.model_fields["worker_threads"].default)
    parser.add_argument("--kill-every", default="3-6", help="seconds between kills: LOW-HIGH")
    parser.add_argument("--limit", type=float, default=3600, help="give up after this many seconds")
    args = parser.parse_args()
    low, high = (float(x) for x in args.kill_every.split("-"))
    print(f"# {platform.node()} {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {args.messages} messages, 2 workers x "
          f"{args.threads} threads, SIGKILL every {low:g}-{high:g} s", flush=True)
    r = run(args.messages, args.threads, (low, high), args.limit)
    print("\n| kill | t s | worker | held | re-sent (bound) | all delivered after s |")
    print("|---:|---:|---:|---:|---:|---:|")
    for n, k in enumerate(r["per_kill"], 1):
        print(f"| {n} | {k['at']:.1f} | {k['slot']} | {k['held']} | {k['resent']} ({r['threads']}) | {k['back_within']:.1f} |")
    worst = max((k["resent"] for k in r["per_kill"]), default=0)
    print(f"\nmessages {r['messages']}, sent {r['sent']} in {r['elapsed']:.0f} s ({r['sent'] / r['elapsed']:.0f}/s), "
          f"statuses {r['statuses']}")
    print(f"lost {r['lost']}; kills {r['kills']}; duplicates {r['duplicates']} (bound threads x kills = "
          f"{r['threads'] * r['kills']}; worst kill {worst}; not after any kill {r['unattributed']})")
    print(f"kill -> its messages delivered: p99 over kills {r['p99_kill']:.1f} s; over messages p50 "
          f"{r['median_message']:.1f} s, p99 {r['p99_message']:.1f} s, max {r['max_message']:.1f} s")


if __name__ == "__main__":
    main()

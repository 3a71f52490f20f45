"""LINE pushes through the outbox, beside mail (bench.outbox --channels email,line).

The same 10k-cart shop as bench.outbox, with one LINE account and every customer linked and
following: one tick writes the reminders on LINE, then delivery — claim, re-check, render (text +
Flex carousel), store the X-Line-Retry-Key, push over HTTP, settle — runs through the broker to the
fake LINE API in its own process (bench/line_sink.py). Checked afterwards: every sent message has
its retry key row, and the fake accepted exactly one push per message.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, func, select, text, update
from sqlmodel import SQLModel

from bench.line_sink import BENCH_TOKEN
from bench.shopgen import idle_cart_shop
from plugin.clock import daytime_zone
from plugin.crypto import TokenCipher
from plugin.demo.mailcatcher import free_port
from plugin.engine.tick import run_shop_tick
from plugin.jobs.broker import build_broker
from plugin.jobs.worker import start_worker
from plugin.runtime import build_runtime
from plugin.settings import Settings
from plugin.storage.db import make_engine
from plugin.storage.models import Customer, LineAccount, LineLink, LinePush, Message, MessageStatus, ScenarioSetting, Shop
from plugin.storage.outbox import analyze_if_grown, high_water

__all__ = ["run_line_pair", "start_line_sink"]


def start_line_sink() -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    sink = subprocess.Popen([sys.executable, "-m", "bench.line_sink", str(port)], stdout=subprocess.PIPE, text=True)
    assert sink.stdout is not None and sink.stdout.readline().strip() == "ready"
    return sink, f"http://127.0.0.1:{port}"


def _link_everyone(engine: Any, shop_id: int, secret: str, now: Any) -> None:
    cipher = TokenCipher(secret)
    with engine.begin() as conn:
        account_id = conn.execute(LineAccount.__table__.insert().values(  # type: ignore[attr-defined]
            shop_id=shop_id, name="ベンチ本店", channel_id="", bot_user_id="Ubench", basic_id="@bench", display_name="ベンチ",
            webhook_key=uuid.uuid4().hex, secret_encrypted=cipher.encrypt("s"), token_encrypted=cipher.encrypt(BENCH_TOKEN),
            paused_until=None, pause_reason="", created_at=now).returning(LineAccount.__table__.c.id)).scalar_one()  # type: ignore[attr-defined]
        ids = [r[0] for r in conn.execute(select(Customer.id).where(Customer.shop_id == shop_id))]
        conn.execute(LineLink.__table__.insert(), [  # type: ignore[attr-defined]
            {"shop_id": shop_id, "account_id": account_id, "customer_id": cid, "line_user_id": f"U{cid:032d}",
             "following": True, "source": "platform", "linked_at": now, "changed_at": now} for cid in ids])


def _wait_sent(engine: Any, messages: int, limit: float = 1200) -> tuple[int, float]:
    started = time.perf_counter()
    sent = 0
    while sent < messages and time.perf_counter() - started < limit:
        time.sleep(0.2)
        with engine.connect() as conn:
            sent = conn.execute(select(func.count()).where(Message.status == MessageStatus.sent)).scalar_one()
    return sent, time.perf_counter() - started


def run_line_pair(pair: str, messages: int, threads: int, secret: str, pg: str, redis: str) -> list[dict[str, Any]]:
    """One storage/broker pair: write + deliver `messages` LINE reminders; rows as bench.outbox prints them."""
    sink, line_url = start_line_sink()
    workdir = Path(tempfile.mkdtemp(prefix="okaeri-bench-line-"))
    admin, schema = None, None
    if pair.startswith("sqlite"):
        url = f"sqlite:///{workdir / 'bench.db'}"
    else:
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(pg.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
        url = f"{pg}?options=-csearch_path%3D{schema}"
    namespace = f"okaeri-bench-{uuid.uuid4().hex[:6]}"
    broker_url = "memory://" if pair.endswith("memory") else redis
    env = {**os.environ, "DATABASE_URL": url, "BROKER_URL": broker_url, "OKAERI_SECRET_KEY": secret, "LINE_API_BASE": line_url,
           "OKAERI_REDIS_NAMESPACE": namespace, "OKAERI_WORKER_THREADS": str(threads)}
    rows: list[dict[str, Any]] = []
    try:
        engine = make_engine(url)
        SQLModel.metadata.create_all(engine)
        settings = Settings(OKAERI_DATA_DIR=workdir, DATABASE_URL=url, OKAERI_SECRET_KEY=secret, LINE_API_BASE=line_url,
                            OKAERI_WORKER_THREADS=threads, OKAERI_REDIS_NAMESPACE=namespace)  # type: ignore[call-arg]
        runtime = build_runtime(settings, engine=engine, broker=build_broker(broker_url, namespace=namespace))
        now = runtime.clock.now()
        shop_id = idle_cart_shop(engine, messages, now, secret)
        _link_everyone(engine, shop_id, secret, now)
        with engine.begin() as conn:
            conn.execute(update(Shop).values(timezone=daytime_zone()))
            conn.execute(update(ScenarioSetting).values(holdout_percent=0))
        with runtime.sessions() as session:
            since = high_water(session)
        started = time.perf_counter()
        run_shop_tick(runtime, shop_id)
        write_seconds = time.perf_counter() - started
        with runtime.sessions() as session:
            analyze_if_grown(session, since)
            on_line = session.execute(select(func.count()).where(Message.channel == "line")).scalar_one()
            ids = [(r[0], r[1]) for r in session.execute(select(Message.id, Message.scheduled_at))]
        for processes in ([0] if pair.endswith("memory") else [1, 2]):
            with engine.begin() as conn:  # each round starts over: rows pending, retry keys forgotten
                conn.execute(update(Message).values(status=MessageStatus.pending, attempts=0, sent_at=None, lease_until=None))
                conn.execute(LinePush.__table__.delete())  # type: ignore[attr-defined]
            before = httpx.get(f"{line_url}/count", timeout=10).json()["pushes"]
            procs, worker = [], None
            if processes == 0:
                worker = start_worker(runtime, threads)
            else:
                procs = [subprocess.Popen([sys.executable, "-m", "plugin", "worker", "--threads", str(threads)], env=env)
                         for _ in range(processes)]
                time.sleep(3)
            started = time.perf_counter()
            runtime.tasks.deliver(ids, runtime.clock.now())
            sent, seconds = _wait_sent(engine, messages)
            if worker:
                worker.stop()
            for p in procs:
                p.terminate()
                p.wait()
            with engine.connect() as conn:
                keys = conn.execute(select(func.count()).select_from(LinePush)).scalar_one()
            pushed = httpx.get(f"{line_url}/count", timeout=10).json()["pushes"] - before
            rows.append({"pair": pair, "workers": "in-process" if processes == 0 else f"{processes} process(es)",
                         "on_line": on_line, "write_rate": messages / write_seconds, "deliver_rate": sent / seconds,
                         "sent": sent, "retry_keys": keys, "pushes": pushed})
        if hasattr(runtime.broker, "flush_all"):
            runtime.broker.flush_all()
        runtime.close()
    finally:
        sink.kill()
        if admin is not None:
            with admin.connect() as conn:
                conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
            admin.dispose()
    return rows


def print_line_rows(rows: list[dict[str, Any]]) -> None:
    print("\nLINE pushes (fake LINE API over HTTP, its own process)")
    print("| pair | workers | on LINE | write msg/s | deliver push/s | sent | retry keys stored | pushes the fake accepted |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['pair']} | {r['workers']} | {r['on_line']} | {r['write_rate']:.0f} | {r['deliver_rate']:.0f} | {r['sent']} | "
              f"{r['retry_keys']} | {r['pushes']} |", flush=True)

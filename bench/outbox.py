"""Outbox throughput for 10k messages, and the raw SMTP rate it is compared with.

For each storage/broker pair: (a) one cart-recovery tick that selects, gates and writes 10,000
messages (then, as the tick actor does, the outbox's statistics are refreshed); (b) delivery —
claim, re-check, render (Jinja2, fresh stock), build MIME, send over SMTP, settle — to a local
SMTP server running in its own process (bench/smtp_sink.py).
  sqlite+memory     in-process worker threads (what `okaeri demo` runs)
  postgresql+redis  1 and 2 `okaeri worker` processes
Raw: the same messages (rendered once beforehand, exactly as delivery renders them) built
(MIME) and sent straight over SMTP from 2 processes, no broker, no database, measured right
before and right after the deliveries (their mean is the reference). Built with the app's own
`build_mime` (since 2026-12-02 it writes the MIME itself, ~50× faster than the email package), and
also with the email package's `email.mime` classes as delivery built mail when issue 18's ratio
targets were set ("raw, email.mime"): the reference before our writer sped up both sides.
Also: MIME building with build_mime (written directly) vs EmailMessage, on one core.

    python -m bench.outbox [--messages 10000] [--threads 4] [--channels email,line]

`--channels email,line` adds LINE pushes through the same pairs in the same run (bench.outbox_line).
"""
from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import os
import smtplib
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from email.header import Header
from email.message import EmailMessage
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import compat32
from email.utils import formataddr, formatdate
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, func, select, text, update
from sqlmodel import SQLModel

from bench.host import header
from bench.shopgen import idle_cart_shop
from plugin.channels.base import OutgoingMessage
from plugin.channels.email import build_mime
from plugin.clock import daytime_zone
from plugin.delivery.batch import prepare_batch
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


def sample(i: int) -> OutgoingMessage:
    """A short two-part Japanese reminder for the MIME API comparison only (the raw rate uses the
    real rendered messages, several times larger)."""
    body = "山田 花子 様\n\nカートに商品が残っています。\n・深煎りブレンド 200g　1,280円 × 1\n  https://shop.example/?pid=1\n" * 3
    html = f"<html><body><h1>カートに商品が残っています</h1><p>{body}</p></body></html>"
    return OutgoingMessage(f"<{i}.{uuid.uuid4().hex}@okaeri>", f"c{i}@bench.example", "山田 花子", "ベンチ商店",
                           "【ベンチ商店】カートに商品が残っています", body, html, "https://okaeri.example/u/token")


def mime_rates(n: int = 3000) -> dict[str, float]:
    """Messages per second building and serialising one two-part Japanese message, one core."""
    messages = [sample(i) for i in range(n)]
    started = time.perf_counter()
    for m in messages:
        build_mime(m, "no-reply@okaeri.example")
    legacy = n / (time.perf_counter() - started)
    started = time.perf_counter()
    for m in messages:
        msg = EmailMessage()
        msg["Subject"], msg["From"], msg["To"] = m.subject, f"{m.from_name} <no-reply@okaeri.example>", m.to_address
        msg["Message-ID"], msg["List-Unsubscribe"] = m.message_id, f"<{m.unsubscribe_url}>"
        msg.set_content(m.body_text)
        msg.add_alternative(m.body_html, subtype="html")
        msg.as_bytes()
    modern = n / (time.perf_counter() - started)
    return {"build_mime": legacy, "EmailMessage": modern}


def email_mime(message: OutgoingMessage, mail_from: str) -> bytes:
    """The same two-part message built with the email package's `email.mime` classes, as
    `build_mime` built it until 2026-12-02 (the raw reference of issue 18's targets)."""
    mime = MIMEMultipart("alternative")
    mime["Subject"] = Header(message.subject, "utf-8")  # type: ignore[assignment]  # compat32 takes a Header
    mime["From"] = formataddr((message.from_name, mail_from), charset="utf-8")
    mime["To"] = formataddr((message.to_name, message.to_address), charset="utf-8")
    mime["Date"] = formatdate(localtime=False, usegmt=True)
    mime["Message-ID"] = message.message_id
    mime["List-Unsubscribe"] = f"<{message.unsubscribe_url}>"
    mime["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    mime.attach(MIMEText(message.body_text, "plain", "utf-8"))
    mime.attach(MIMEText(message.body_html, "html", "utf-8"))
    mime.set_boundary(f"==okaeri_{hashlib.sha256(message.message_id.encode()).hexdigest()[:24]}")  # as it did
    return mime.as_bytes(policy=compat32.clone(linesep="\r\n"))


BUILDERS: dict[str, Callable[[OutgoingMessage, str], bytes]] = {"build_mime": build_mime, "email.mime": email_mime}


def _raw_sender(port: int, messages: list[OutgoingMessage], builder: str = "build_mime") -> None:
    build = BUILDERS[builder]
    connection = smtplib.SMTP("127.0.0.1", port, timeout=30)
    for m in messages:
        connection.sendmail("no-reply@okaeri.example", [m.to_address], build(m, "no-reply@okaeri.example"))
    connection.quit()


def rendered(runtime: Any, limit: int) -> list[OutgoingMessage]:
    """The messages delivery sends (rendered exactly as delivery renders them), nothing written."""
    with runtime.sessions() as session:
        rows = list(session.execute(select(Message).order_by(Message.id).limit(limit)).scalars())
        outgoing, _, _ = prepare_batch(runtime, session, rows)
        session.rollback()
    return [mail for _, mail in outgoing]


def raw_rate(port: int, messages: list[OutgoingMessage], processes: int = 2, builder: str = "build_mime") -> float:
    """Build and send the same messages straight over SMTP from `processes` processes: the ceiling."""
    share = len(messages) // processes
    workers = [multiprocessing.Process(target=_raw_sender, args=(port, messages[p * share:(p + 1) * share], builder))
               for p in range(processes)]
    started = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return share * processes / (time.perf_counter() - started)


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


def run_pair(pair: str, messages: int, threads: int, smtp_port: int) -> list[dict[str, Any]]:
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
    env = {**os.environ, "DATABASE_URL": url, "BROKER_URL": broker_url, "OKAERI_SECRET_KEY": SECRET,
           "OKAERI_SMTP_PORT": str(smtp_port), "OKAERI_REDIS_NAMESPACE": namespace, "OKAERI_WORKER_THREADS": str(threads)}
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
        started = time.perf_counter()
        run_shop_tick(runtime, shop_id)
        write_seconds = time.perf_counter() - started
        with runtime.sessions() as session:  # as the tick actor does after its hand-off
            analyze_if_grown(session, since)
        same_messages = rendered(runtime, messages)
        raw_before = raw_rate(smtp_port, same_messages)  # before and after: this VM's speed drifts
        stdlib_before = raw_rate(smtp_port, same_messages, builder="email.mime")
        for processes in ([0] if pair.endswith("memory") else [1, 2]):
            ids = _reset(engine)
            procs, worker = [], None
            if processes == 0:
                worker = start_worker(runtime, threads)
            else:
                procs = [subprocess.Popen([sys.executable, "-m", "plugin", "worker", "--threads", str(threads)], env=env)
                         for _ in range(processes)]
                time.sleep(3)  # workers connect and declare queues
            started = time.perf_counter()
            runtime.tasks.deliver(ids, runtime.clock.now())
            sent, seconds = _wait_sent(engine, messages)
            if worker:
                worker.stop()
            for p in procs:
                p.terminate()
                p.wait()
            rows.append({"pair": pair, "workers": "in-process" if processes == 0 else f"{processes} process(es)",
                         "write_rate": messages / write_seconds, "deliver_rate": sent / seconds, "sent": sent})
        raw_after = raw_rate(smtp_port, same_messages)
        stdlib_after = raw_rate(smtp_port, same_messages, builder="email.mime")
        for row in rows:
            row["raw_rate"], row["raw_range"] = (raw_before + raw_after) / 2, (raw_before, raw_after)
            row["stdlib_rate"] = (stdlib_before + stdlib_after) / 2
        if hasattr(runtime.broker, "flush_all"):
            runtime.broker.flush_all()
        runtime.close()
    finally:
        if admin is not None:
            with admin.connect() as conn:
                conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
            admin.dispose()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=Settings.model_fields["worker_threads"].default,
                        help="worker threads per process (default: the product's default)")
    parser.add_argument("--pairs", default="sqlite+memory,postgresql+redis")
    parser.add_argument("--channels", default="email", help="email, line or email,line (LINE: bench.outbox_line)")
    args = parser.parse_args()
    channels = set(args.channels.split(","))
    smtp_port = free_port()
    sink = subprocess.Popen([sys.executable, "-m", "bench.smtp_sink", str(smtp_port)], stdout=subprocess.PIPE, text=True)
    assert sink.stdout is not None and sink.stdout.readline().strip() == "ready"
    try:
        print(f"# {header()}; {args.messages} messages, {args.threads} threads per worker")
        print("| pair | workers | write msg/s | deliver msg/s | sent | raw SMTP msg/s, 2 processes (before, after) | deliver / raw "
              "| raw, email.mime msg/s | deliver / raw, email.mime |")
        print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
        for pair in args.pairs.split(",") if "email" in channels else []:
            for r in run_pair(pair, args.messages, args.threads, smtp_port):
                print(f"| {r['pair']} | {r['workers']} | {r['write_rate']:.0f} | {r['deliver_rate']:.0f} | {r['sent']} | "
                      f"{r['raw_rate']:.0f} ({r['raw_range'][0]:.0f}, {r['raw_range'][1]:.0f}) | "
                      f"{r['deliver_rate'] / r['raw_rate']:.0%} | {r['stdlib_rate']:.0f} | "
                      f"{r['deliver_rate'] / r['stdlib_rate']:.0%} |", flush=True)
        if "line" in channels:
            _line(args)
        print("\nMIME build+serialise, one core: " + ", ".join(f"{k} {v:.0f}/s" for k, v in mime_rates().items()))
    finally:
        sink.kill()


def _line(args: argparse.Namespace) -> None:
    """LINE pushes for the same pairs (bench.outbox_line), printed after the mail rows."""
    from bench.outbox_line import print_line_rows, run_line_pair

    print_line_rows([r for pair in args.pairs.split(",") for r in run_line_pair(pair, args.messages, args.threads, SECRET, PG, REDIS)])


if __name__ == "__main__":
    main()

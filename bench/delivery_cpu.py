"""CPU time of delivery's per-batch work short of the claim and SMTP: re-check every gate, load
the content with fresh stock, render on the message's channel (`prepare_batch`), for N
generated cart reminders in batches of 50 on SQLite. Process CPU, not wall time, so the figure
moves less with the VM's load than the end-to-end delivery bench; the best of three passes.

    python -m bench.delivery_cpu [--messages 3000]
"""
from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time

from sqlalchemy import select, update
from sqlmodel import SQLModel, col

from bench.shopgen import idle_cart_shop
from plugin.clock import daytime_zone
from plugin.delivery.batch import prepare_batch
from plugin.engine.tick import run_shop_tick
from plugin.jobs.broker import build_broker
from plugin.runtime import build_runtime
from plugin.settings import Settings
from plugin.storage.db import make_engine
from plugin.storage.models import Message, ScenarioSetting, Shop

SECRET = "bench-secret-key-0123456789abcdef0123456789"
BATCH = 50


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=3000)
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix="okaeri-bench-")
    url = f"sqlite:///{workdir}/bench.db"
    engine = make_engine(url)
    SQLModel.metadata.create_all(engine)
    runtime = build_runtime(Settings(OKAERI_DATA_DIR=workdir, DATABASE_URL=url, OKAERI_SECRET_KEY=SECRET),  # type: ignore[call-arg]
                            engine=engine, broker=build_broker("memory://"))
    shop_id = idle_cart_shop(engine, args.messages, runtime.clock.now(), SECRET)
    with engine.begin() as connection:
        connection.execute(update(Shop).values(timezone=daytime_zone()))
        connection.execute(update(ScenarioSetting).values(holdout_percent=0))
    run_shop_tick(runtime, shop_id)
    with runtime.sessions() as session:
        ids = list(session.execute(select(col(Message.id)).order_by(col(Message.id))).scalars())
    passes = []
    for _ in range(3):
        seconds, rendered = 0.0, 0
        with runtime.sessions() as session:
            for start in range(0, len(ids), BATCH):
                rows = list(session.execute(select(Message).where(col(Message.id).in_(ids[start:start + BATCH]))).scalars())
                began = time.process_time()
                outgoing, _, _ = prepare_batch(runtime, session, rows)
                seconds += time.process_time() - began
                rendered += len(outgoing)
            session.rollback()
        passes.append((seconds, rendered))
    runtime.close()
    print(f"# {platform.node()} {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"{time.strftime('%Y-%m-%d')}")
    print("| messages | rendered | CPU s per pass | best ms per message |")
    print("|---:|---:|---|---:|")
    best = min(s for s, _ in passes)
    print(f"| {len(ids)} | {passes[0][1]} | {', '.join(f'{s:.2f}' for s, _ in passes)} | {best / len(ids) * 1000:.3f} |")


if __name__ == "__main__":
    main()

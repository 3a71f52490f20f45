"""The fake LINE Messaging API (plugin.demo.sandbox.line_api) served over HTTP in its own process,
for benches whose workers are other processes. It knows one bot, token BENCH_TOKEN.

    python -m bench.line_sink PORT    # prints "ready" once listening; GET /count: pushes accepted
"""
from __future__ import annotations

import socket
import sys
import threading
import time

import uvicorn
from fastapi import FastAPI

from plugin.demo.sandbox.line_api import FakeLineApi

BENCH_TOKEN = "bench-line-token"
BENCH_BOT = "U00000000000000000000000000bench"


def app(fake: FakeLineApi) -> FastAPI:
    served = FastAPI()
    served.include_router(fake.router())

    @served.get("/count")
    def count() -> dict[str, int]:
        return {"pushes": len(fake.pushes), "requests": len(fake.requests), "keys": len({k for k, _ in fake.requests})}
    return served


def main() -> None:
    port = int(sys.argv[1])
    fake = FakeLineApi()
    fake.add_bot(BENCH_TOKEN, user_id=BENCH_BOT)
    server = uvicorn.Server(uvicorn.Config(app(fake), host="127.0.0.1", port=port, log_level="warning", access_log=False))
    threading.Thread(target=server.run, daemon=True).start()
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    print("ready", flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()

"""A local SMTP server in its own process that accepts and discards mail, counting it; given a
log file, it also appends one line per accepted message: the time it accepted it and its Message-ID.
It advertises PIPELINING (RFC 2920) as Postfix does by default, unless OKAERI_BENCH_SINK_PIPELINING=0.

    python -m bench.smtp_sink PORT [LOG]    # prints "ready" once listening; runs until killed
"""
from __future__ import annotations

import os
import re
import sys
import threading
import time
from typing import IO, Any

from aiosmtpd.controller import Controller

_MESSAGE_ID = re.compile(rb"^Message-ID:\s*(\S+)", re.MULTILINE | re.IGNORECASE)


class Sink:
    count = 0
    log: IO[str] | None = None
    pipelining = os.environ.get("OKAERI_BENCH_SINK_PIPELINING", "1") != "0"

    async def handle_EHLO(self, server: Any, session: Any, envelope: Any, hostname: str,  # noqa: N802
                          responses: list[str]) -> list[str]:
        session.host_name = hostname
        return [*responses[:-1], "250-PIPELINING", responses[-1]] if Sink.pipelining else responses

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        Sink.count += 1
        if Sink.log is not None:
            head = envelope.content[:envelope.content.find(b"\r\n\r\n")]
            found = _MESSAGE_ID.search(head)
            Sink.log.write(f"{time.time():.3f} {found.group(1).decode() if found else '-'}\n")
            Sink.log.flush()  # the sink is killed at the end: every line must already be written
        return "250 OK"


if __name__ == "__main__":
    if len(sys.argv) > 2:
        Sink.log = open(sys.argv[2], "a", encoding="ascii")  # noqa: SIM115 - open for the process's life
    controller = Controller(Sink(), hostname="127.0.0.1", port=int(sys.argv[1]))
    controller.start()
    print("ready", flush=True)
    threading.Event().wait()

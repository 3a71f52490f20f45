"""A local SMTP server in its own process that accepts and discards mail, counting it.

    python -m bench.smtp_sink PORT    # prints "ready" once listening; runs until killed
"""
from __future__ import annotations

import sys
import threading
from typing import Any

from aiosmtpd.controller import Controller


class Sink:
    count = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        Sink.count += 1
        return "250 OK"


if __name__ == "__main__":
    controller = Controller(Sink(), hostname="127.0.0.1", port=int(sys.argv[1]))
    controller.start()
    print("ready", flush=True)
    threading.Event().wait()

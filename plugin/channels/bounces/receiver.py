"""`okaeri bounces`: an SMTP server for the bounce domain (its MX, or a relay's forward target).

It accepts mail for any address at the bounce domain (VERP addresses, and the feedback-loop
address complaints are sent to) and refuses every other recipient, so it is never an open relay.
A report is answered 250 once handled, or when it cannot be read (refusing a bounce only makes the
remote server bounce the bounce); 451 when storage fails, so the sender retries later.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiosmtpd.controller import Controller

from plugin.channels.bounces.inbound import Inbox

__all__ = ["BounceReceiver", "MAX_REPORT_BYTES"]

log = logging.getLogger("okaeri.bounces")
MAX_REPORT_BYTES = 10 * 1024 * 1024  # a DSN or ARF report with the original attached; larger is refused (552)
IDLE_TIMEOUT = 60.0  # seconds a client may stay silent


class _Handler:
    def __init__(self, inbox: Inbox) -> None:
        self.inbox = inbox

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,  # noqa: N802 (aiosmtpd hook)
                          rcpt_options: list[str]) -> str:
        if not self.inbox.return_path.is_ours(address):
            return "550 5.7.1 relaying denied: this server only takes reports for its bounce domain"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd hook)
        raw = envelope.original_content or envelope.content
        try:
            await asyncio.get_running_loop().run_in_executor(None, self.inbox.receive, raw, list(envelope.rcpt_tos))
        except Exception:  # storage down or a bug: keep the report with the sender, which retries
            log.exception("okaeri.bounces.failed")
            return "451 4.3.0 report not stored, try again later"
        return "250 OK"


class BounceReceiver:
    """The SMTP server on host:port, in its own thread (aiosmtpd's Controller)."""

    def __init__(self, inbox: Inbox, host: str = "127.0.0.1", port: int = 2525) -> None:
        self.host, self.port = host, port
        self._controller = Controller(_Handler(inbox), hostname=host, port=port, data_size_limit=MAX_REPORT_BYTES,
                                      timeout=IDLE_TIMEOUT, ident="okaeri bounces")

    def start(self) -> BounceReceiver:
        self._controller.start()
        return self

    def alive(self) -> bool:
        """The server thread runs (for the liveness probe)."""
        thread = self._controller._thread  # aiosmtpd keeps its server thread there
        return thread is not None and thread.is_alive()

    def stop(self) -> None:
        self._controller.stop()

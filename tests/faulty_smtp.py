"""A real SMTP server on loopback (aiosmtpd) that misbehaves on request, and records the
Message-ID of every message it accepts: what the fault tests count sends with."""
from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from plugin.demo.mailcatcher import free_port

__all__ = ["FaultySmtp", "relay"]


@dataclass
class FaultySmtp:
    """Accepts mail on a fixed port (kept across restarts). Faults, each set by a test:

    mail_reply               the reply to the next MAIL FROM instead of 250 (one-shot)
    rcpt_reply / data_reply  address → SMTP reply given instead of 250 (4xx, 5xx)
    drop_in_data             how many next transfers are cut off after the body, before a reply
                             (not accepted); `accept_then_drop` does the same after accepting
    hang_in_data             how many next transfers get no reply at all (the client times out)
    delay                    seconds each accepted transfer takes (so a batch can be killed mid-way)

    With `pipelining` it advertises PIPELINING (RFC 2920), as Postfix does, and clients may send
    MAIL, RCPT and DATA in one write.
    """

    host: str = "127.0.0.1"
    port: int = field(default_factory=free_port)
    mail_reply: str = ""
    rcpt_reply: dict[str, str] = field(default_factory=dict)
    data_reply: dict[str, str] = field(default_factory=dict)
    drop_in_data: int = 0
    accept_then_drop: int = 0
    hang_in_data: int = 0
    delay: float = 0.0
    pipelining: bool = False
    accepted: list[str] = field(default_factory=list)  # Message-IDs, in order of acceptance
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _controller: Controller | None = None

    def start(self) -> FaultySmtp:
        self._controller = Controller(_Handler(self), hostname=self.host, port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def restart(self) -> None:
        """What a relay restart looks like to clients: every connection closed, then the same port again."""
        self.stop()
        self.start()

    def counts(self) -> Counter[str]:
        """How many times each Message-ID was accepted."""
        with self._lock:
            return Counter(self.accepted)

    def take(self, name: str) -> bool:
        """Use up one of a counted fault; True when it applies to this transfer."""
        with self._lock:
            left: int = getattr(self, name)
            if left:
                setattr(self, name, left - 1)
            return bool(left)

    def record(self, content: bytes) -> None:
        parsed = message_from_bytes(content, policy=policy.default)
        with self._lock:
            self.accepted.append(str(parsed["Message-ID"]))


@dataclass
class _Handler:
    server: FaultySmtp

    async def handle_EHLO(self, server: Any, session: Any, envelope: Any, hostname: str,  # noqa: N802 (aiosmtpd hook)
                          responses: list[str]) -> list[str]:
        session.host_name = hostname
        if self.server.pipelining:  # before the last line, which is the one without a hyphen
            return [*responses[:-1], "250-PIPELINING", responses[-1]]
        return responses

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str,  # noqa: N802 (aiosmtpd hook)
                          mail_options: list[str]) -> str:
        with self.server._lock:
            refusal, self.server.mail_reply = self.server.mail_reply, ""
        if refusal:
            return refusal
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,  # noqa: N802 (aiosmtpd hook)
                          rcpt_options: list[str]) -> str:
        if address in self.server.rcpt_reply:
            return self.server.rcpt_reply[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd hook)
        faults = self.server
        for address in envelope.rcpt_tos:
            if address in faults.data_reply:
                return faults.data_reply[address]
        if faults.take("hang_in_data"):
            await asyncio.sleep(3600)  # cancelled when the server stops
        if faults.take("drop_in_data"):
            server.transport.close()
            return "421 closing"  # never reaches the client
        if faults.delay:
            await asyncio.sleep(faults.delay)
        faults.record(envelope.content)
        if faults.take("accept_then_drop"):
            server.transport.close()
        return "250 OK"


@pytest.fixture(params=[False, True], ids=["one-command-a-time", "pipelining"])
def relay(request: pytest.FixtureRequest) -> Iterator[FaultySmtp]:
    """A test's relay, once taking one command at a time and once pipelining (a local `relay` fixture overrides it)."""
    server = FaultySmtp(pipelining=request.param).start()
    yield server
    server.stop()

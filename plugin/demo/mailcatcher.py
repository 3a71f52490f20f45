"""A local SMTP server (aiosmtpd) that keeps what it receives: the demo's inbox and the tests'."""
from __future__ import annotations

import mailbox
import socket
import threading
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

__all__ = ["MailCatcher", "free_port"]


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass
class _Handler:
    catcher: MailCatcher

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,  # noqa: N802
                          rcpt_options: list[str]) -> str:
        if address in self.catcher.reject:
            return self.catcher.reject[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd hook)
        self.catcher.store(envelope.content, list(envelope.rcpt_tos))
        return "250 OK"


@dataclass
class MailCatcher:
    """Accepts every message on host:port; keeps them in memory and, if given, in an mbox file."""

    host: str = "127.0.0.1"
    port: int = 0
    mbox_path: Path | None = None
    messages: list[EmailMessage] = field(default_factory=list)
    reject: dict[str, str] = field(default_factory=dict)  # address → SMTP reply, to test bounces
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _controller: Controller | None = None
    _stopped: bool = False

    def start(self) -> MailCatcher:
        """Listen (again); a restart after stop() takes a fresh port."""
        self.port = free_port(self.host) if self._stopped or not self.port else self.port
        self._stopped = False
        if self.mbox_path and self.mbox_path.exists():
            for raw in mailbox.mbox(self.mbox_path):
                self.messages.append(message_from_bytes(raw.as_bytes(), policy=policy.default))
        self._controller = Controller(_Handler(self), hostname=self.host, port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None
            self._stopped = True

    def store(self, raw: bytes, recipients: list[str]) -> None:
        parsed = message_from_bytes(raw, policy=policy.default)
        with self._lock:
            self.messages.append(parsed)
            if self.mbox_path:
                box = mailbox.mbox(self.mbox_path)
                box.add(raw)
                box.close()

    def snapshot(self) -> list[EmailMessage]:
        with self._lock:
            return list(self.messages)

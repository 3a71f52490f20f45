"""Fixtures of the email tests: an SMTP server that keeps the exact bytes and envelope it received,
a DKIM key with its DNS record, and a runtime that signs and sends with VERP to that server."""
from __future__ import annotations

import base64
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dramatiq
import pytest
from aiosmtpd.controller import Controller
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import Engine

from plugin.clock import FrozenClock
from plugin.demo.mailcatcher import free_port
from plugin.runtime import Runtime, build_runtime
from plugin.settings import Settings
from tests.conftest import SECRET

DKIM_DOMAIN = "okaeri.test"
DKIM_SELECTOR = "okaeri2026"
BOUNCE_DOMAIN = "bounce.okaeri.test"


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes


@dataclass
class RawCapture:
    """Keeps every mail as the bytes that came over the wire, with its envelope."""

    mails: list[Received] = field(default_factory=list)
    port: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _controller: Controller | None = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd hook)
        with self._lock:
            self.mails.append(Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
        return "250 OK"

    def start(self) -> RawCapture:
        self.port = free_port()
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()


@dataclass(frozen=True)
class DkimKey:
    pem: bytes
    dns_record: bytes  # the TXT record at <selector>._domainkey.<domain>

    def dns(self, name: bytes, timeout: int = 5) -> bytes | None:
        """A DNS stub for dkim.verify(dnsfunc=…): answers only the selector's record."""
        return self.dns_record if name == f"{DKIM_SELECTOR}._domainkey.{DKIM_DOMAIN}.".encode() else None


@pytest.fixture(scope="session")
def dkim_key() -> DkimKey:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return DkimKey(pem, b"v=DKIM1; k=rsa; p=" + base64.b64encode(public))


@pytest.fixture
def capture() -> Iterator[RawCapture]:
    server = RawCapture().start()
    yield server
    server.stop()


@pytest.fixture
def mail_settings(tmp_path: Path, database_url: str, capture: RawCapture, dkim_key: DkimKey) -> Settings:
    key_file = tmp_path / "dkim.pem"
    key_file.write_bytes(dkim_key.pem)
    return Settings(
        OKAERI_DATA_DIR=tmp_path, DATABASE_URL=database_url, OKAERI_SECRET_KEY=SECRET,
        OKAERI_BASE_URL="http://okaeri.test", OKAERI_SMTP_PORT=capture.port, OKAERI_MAIL_FROM="shop-mail@okaeri.test",
        OKAERI_DKIM_DOMAIN=DKIM_DOMAIN, OKAERI_DKIM_SELECTOR=DKIM_SELECTOR, OKAERI_DKIM_PRIVATE_KEY_FILE=str(key_file),
        OKAERI_BOUNCE_DOMAIN=BOUNCE_DOMAIN, COLORME_CLIENT_ID="cid", COLORME_CLIENT_SECRET="csecret",
        COLORME_WEBHOOK_SECRET="whsecret", COLORME_API_BASE="https://api.shop-pro.jp",
        OKAERI_REDIS_NAMESPACE=f"okaeri-test-{uuid.uuid4().hex[:8]}",
    )  # type: ignore[call-arg]


@pytest.fixture
def mail_runtime(mail_settings: Settings, engine: Engine, clock: FrozenClock, broker: dramatiq.Broker) -> Iterator[Runtime]:
    runtime = build_runtime(mail_settings, clock=clock, broker=broker, engine=engine)
    yield runtime
    runtime.close_channels()

"""`okaeri bounces` and `okaeri dkim-record` as an operator runs them."""
from __future__ import annotations

import base64
import os
import smtplib
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sqlmodel import Session

from plugin.channels.verp import ReturnPath
from plugin.crypto import Signer
from plugin.demo.mailcatcher import free_port
from plugin.storage.db import make_engine
from plugin.storage.models import Message, MessageStatus, Suppression
from tests.factories import make_customer, make_shop
from tests.mail_fixtures import DKIM_DOMAIN, DKIM_SELECTOR, dkim_key  # noqa: F401 (fixture)
from tests.test_email_bounces import dsn

SECRET = "k" * 40


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "BROKER_URL")}
    return {**base, "OKAERI_SECRET_KEY": SECRET, "OKAERI_DATA_DIR": str(tmp_path), **extra}


def _okaeri(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "plugin", *args], env=env, capture_output=True, text=True, timeout=60)


def test_bounces_without_a_bounce_domain_is_one_clear_line(tmp_path: Path) -> None:
    result = _okaeri("bounces", env=_env(tmp_path))
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert result.stderr.strip() == ("okaeri: invalid configuration: OKAERI_BOUNCE_DOMAIN: must be set "
                                     "(the domain of the VERP return path)")


def test_dkim_record_prints_the_key_to_publish_and_warns_when_from_is_not_aligned(tmp_path: Path, dkim_key) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    key_file = tmp_path / "dkim.pem"
    key_file.write_bytes(dkim_key.pem)
    env = _env(tmp_path, OKAERI_DKIM_DOMAIN=DKIM_DOMAIN, OKAERI_DKIM_SELECTOR=DKIM_SELECTOR,
               OKAERI_DKIM_PRIVATE_KEY_FILE=str(key_file), OKAERI_MAIL_FROM="news@mail.okaeri.test")
    result = _okaeri("dkim-record", env=env)
    assert result.returncode == 0 and result.stderr == ""
    name, record = result.stdout.strip().split(" IN TXT ")
    assert name == f"{DKIM_SELECTOR}._domainkey.{DKIM_DOMAIN}."
    assert record.strip('"') == dkim_key.dns_record.decode()
    misaligned = _okaeri("dkim-record", env={**env, "OKAERI_MAIL_FROM": "news@other.example"})
    assert misaligned.returncode == 0 and "not see this signature as aligned" in misaligned.stderr
    assert base64.b64decode(record.strip('"').split("p=")[1])  # the record dkim.verify reads in test_email_dkim


@pytest.mark.slow
def test_okaeri_bounces_suppresses_a_hard_bounce_sent_to_it_over_smtp(tmp_path: Path) -> None:
    # Given a migrated database with one sent message, and `okaeri bounces` running on loopback
    env = _env(tmp_path, OKAERI_BOUNCE_DOMAIN="bounce.okaeri.test")
    assert _okaeri("migrate", env=env).returncode == 0
    engine = make_engine(f"sqlite:///{(tmp_path / 'okaeri.db').resolve()}")
    with Session(engine, expire_on_commit=False) as session:
        now = datetime.now(UTC)
        shop = make_shop(session, now)
        customer = make_customer(session, shop, now, email="gone@example.jp")
        message = Message(shop_id=shop.id, customer_id=customer.id, scenario_key="ranking", trigger_key="week:1",
                          to_address=customer.email, status=MessageStatus.sent, scheduled_at=now, created_at=now)
        session.add(message)
        session.commit()
    return_path = ReturnPath(Signer(SECRET), "bounce.okaeri.test")
    port, health = free_port(), free_port()
    server = subprocess.Popen([sys.executable, "-m", "plugin", "bounces", "--port", str(port), "--health-port", str(health)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        assert server.stdout.readline().strip() == f"receiving reports for @bounce.okaeri.test on 127.0.0.1:{port}"
        # When a remote server returns the hard bounce to the message's return path
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as remote:
            remote.sendmail("", [return_path.address(return_path.ref(message.id or 0))], dsn("5.1.1", recipient=customer.email))
        # Then the address is suppressed in that database
        deadline = time.monotonic() + 10
        reason = None
        while reason is None and time.monotonic() < deadline:
            with Session(engine) as session:
                reason = session.execute(select(Suppression.reason)).scalar()
            time.sleep(0.05)
        assert reason == "bounced"
        # and the receiver's own metrics count it, beside its probes
        metrics = httpx.get(f"http://127.0.0.1:{health}/metrics", timeout=10).text
        assert 'okaeri_delivery_reports_total{channel="email",kind="hard_bounce",outcome="suppressed"} 1.0' in metrics
        assert httpx.get(f"http://127.0.0.1:{health}/healthz", timeout=10).status_code == 200
    finally:
        server.terminate()
        server.wait(timeout=10)
        engine.dispose()

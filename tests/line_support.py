"""LINE test data and the fake LINE API wired into a runtime (no network)."""
from __future__ import annotations

import secrets
from datetime import datetime

from sqlmodel import Session

from plugin.channels.line import LineChannel
from plugin.demo.sandbox.line_api import FakeLineApi
from plugin.runtime import Runtime
from plugin.storage.models import Customer, LineAccount, LineLink, Shop

SECRET = "line-channel-secret-0123456789"


def fake_line(runtime: Runtime) -> FakeLineApi:
    """The runtime's LINE channel talking to a fake LINE that does not wait between retries."""
    fake = FakeLineApi()
    channel = runtime.channels["line"]
    assert isinstance(channel, LineChannel)
    channel.use_transport(fake.transport())
    channel.sleep = lambda seconds: None
    return fake


def make_line_account(session: Session, runtime: Runtime, shop: Shop, fake: FakeLineApi | None = None,
                      token: str | None = None, name: str = "本店") -> LineAccount:
    token = token or f"token-{secrets.token_hex(4)}"
    info = fake.add_bot(token) if fake is not None else {"userId": "Ubot", "basicId": "@okaeri", "displayName": name}
    account = LineAccount(shop_id=shop.id or 0, name=name, bot_user_id=info["userId"], basic_id=info["basicId"],
                          display_name=info["displayName"], webhook_key=secrets.token_urlsafe(16),
                          secret_encrypted=runtime.cipher.encrypt(SECRET), token_encrypted=runtime.cipher.encrypt(token),
                          created_at=runtime.clock.now())
    session.add(account)
    session.commit()
    session.refresh(account)
    return account


def link(session: Session, account: LineAccount, customer: Customer, now: datetime, user_id: str | None = None,
         following: bool = True) -> LineLink:
    row = LineLink(shop_id=account.shop_id, account_id=account.id or 0, customer_id=customer.id or 0,
                   line_user_id=user_id or f"U{secrets.token_hex(16)}", following=following, source="code",
                   linked_at=now, changed_at=now)
    session.add(row)
    session.commit()
    session.refresh(row)
    return row

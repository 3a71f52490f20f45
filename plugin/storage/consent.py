"""The suppression list and consent records: unsubscribes and bounces always win."""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import update
from sqlmodel import Session, col

from plugin.storage.models import ConsentRecord, Customer, Message, MessageStatus, Suppression
from plugin.storage.rollup import count_cancelling
from plugin.storage.upsert import insert_ignore, insert_plain, table_of

__all__ = ["suppress", "record_consent", "record_consents"]


def record_consent(session: Session, shop_id: int, channel: str, address: str, consented: bool, source: str,
                   now: datetime) -> None:
    """Keep when and how an address opted in or out (特定電子メール法); never purged while sending."""
    session.add(ConsentRecord(shop_id=shop_id, channel=channel, address=address, consented=consented,
                              source=source, recorded_at=now))


def record_consents(session: Session, shop_id: int, channel: str, changes: Iterable[tuple[str, bool]], source: str,
                    now: datetime) -> None:
    """`record_consent` for many addresses at once, (address, consented) each: one executemany,
    where a first sync of a shop of a hundred thousand customers spent a fifth of its time building
    one ORM object per record."""
    rows = [{"shop_id": shop_id, "channel": channel, "address": address, "consented": consented, "source": source,
             "recorded_at": now} for address, consented in changes]
    insert_plain(session, table_of(ConsentRecord), rows)


def suppress(session: Session, shop_id: int, channel: str, address: str, reason: str, now: datetime,
             source: str = "") -> None:
    """Suppress an address, withdraw its consent and cancel its pending messages (no commit)."""
    first = insert_ignore(
        session, table_of(Suppression),
        [{"shop_id": shop_id, "channel": channel, "address": address, "reason": reason, "created_at": now}],
        ["shop_id", "channel", "address"],
    )
    if first:  # a repeat (a second one-click POST, a bounce after an unsubscribe) changes no consent
        record_consent(session, shop_id, channel, address, False, source or reason, now)
    if channel == "email":
        session.execute(
            update(Customer).where(col(Customer.shop_id) == shop_id, col(Customer.email) == address)
            .values(email_consent=False, email_consent_at=now)
        )
    count_cancelling(session, f"suppressed: {reason}", col(Message.shop_id) == shop_id, col(Message.channel) == channel,
                     col(Message.to_address) == address)
    session.execute(
        update(Message)
        .where(col(Message.shop_id) == shop_id, col(Message.channel) == channel,
               col(Message.to_address) == address, col(Message.status) == MessageStatus.pending)
        .values(status=MessageStatus.cancelled, last_error=f"suppressed: {reason}")
    )

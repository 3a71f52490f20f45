"""The suppression list: unsubscribes and bounces always win over any scenario."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlmodel import Session

from plugin.models import Customer, Message, MessageStatus, Suppression
from plugin.upsert import insert_ignore

__all__ = ["suppress"]


def suppress(session: Session, shop_id: int, channel: str, address: str, reason: str, now: datetime) -> None:
    """Suppress an address, withdraw its consent and cancel its pending messages (no commit)."""
    insert_ignore(
        session, Suppression.__table__,  # type: ignore[arg-type]
        [{"shop_id": shop_id, "channel": channel, "address": address, "reason": reason, "created_at": now}],
        ["shop_id", "channel", "address"],
    )
    if channel == "email":
        session.execute(
            update(Customer).where(Customer.shop_id == shop_id, Customer.email == address)  # type: ignore[arg-type]
            .values(email_consent=False, email_consent_at=now)
        )
    session.execute(
        update(Message)
        .where(Message.shop_id == shop_id, Message.channel == channel, Message.to_address == address,  # type: ignore[arg-type]
               Message.status == MessageStatus.pending)
        .values(status=MessageStatus.cancelled, last_error=f"suppressed: {reason}")
    )

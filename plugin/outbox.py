"""The outbox: write once per idempotency key, claim with a lease, settle, sweep.

pending ──claim──▶ sending ──▶ sent
   ▲                  │ ├─────▶ failed   (permanent, or attempts exhausted)
   └──retry/lease─────┘ └─────▶ cancelled (exit condition met, suppressed, shop gone)
"""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlmodel import Session

from plugin.models import Message, MessageStatus
from plugin.upsert import insert_ignore

__all__ = ["write", "claim", "claim_many", "settle_many", "mark_sent", "mark_retry", "mark_failed", "cancel", "due_for_enqueue",
           "LEASE", "MAX_ATTEMPTS", "backoff"]

LEASE = timedelta(minutes=5)
STALE_ENQUEUE = timedelta(minutes=10)
MAX_ATTEMPTS = 8


def backoff(attempts: int) -> timedelta:
    """1, 2, 4 … minutes, capped at 4 hours."""
    return timedelta(minutes=min(2 ** max(attempts - 1, 0), 240))


def write(session: Session, rows: Sequence[dict[str, Any]]) -> list[int]:
    """Insert messages; a row whose idempotency key exists is skipped. Returns new ids."""
    return insert_ignore(session, Message.__table__, rows, ["idempotency_key"])  # type: ignore[arg-type]


def claim_many(session: Session, message_ids: Sequence[int], now: datetime) -> list[Message]:
    """Take the due ones among these messages (or those whose lease ran out) in one UPDATE."""
    due = and_(Message.status == MessageStatus.pending, Message.scheduled_at <= now)
    expired = and_(Message.status == MessageStatus.sending, Message.lease_until < now)  # type: ignore[operator]
    claimed = list(session.execute(
        update(Message)
        .where(Message.id.in_(list(message_ids)), or_(due, expired))  # type: ignore[union-attr,arg-type]
        .values(status=MessageStatus.sending, lease_until=now + LEASE, attempts=Message.attempts + 1)
        .returning(Message.id)
    ).scalars())
    session.commit()
    if not claimed:
        return []
    return list(session.execute(select(Message).where(Message.id.in_(claimed)).order_by(Message.id)  # type: ignore[union-attr]
                                .execution_options(populate_existing=True)).scalars())


def settle_many(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Bulk-settle claimed messages: each row has `id` plus the columns to set."""
    if rows:
        session.execute(update(Message), [{**r, "lease_until": None} for r in rows])
        session.commit()


def claim(session: Session, message_id: int, now: datetime) -> Message | None:
    """Take a due message for delivery (or one whose lease ran out); None if someone else has it."""
    due = and_(Message.status == MessageStatus.pending, Message.scheduled_at <= now)
    expired = and_(Message.status == MessageStatus.sending, Message.lease_until < now)  # type: ignore[operator]
    result = session.execute(
        update(Message)
        .where(Message.id == message_id, or_(due, expired))  # type: ignore[arg-type]
        .values(status=MessageStatus.sending, lease_until=now + LEASE, attempts=Message.attempts + 1)
    )
    session.commit()
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return None
    return session.get(Message, message_id, populate_existing=True)


def _settle(session: Session, message_id: int, **values: Any) -> bool:
    result = session.execute(
        update(Message)
        .where(Message.id == message_id, Message.status == MessageStatus.sending)  # type: ignore[arg-type]
        .values(lease_until=None, **values)
    )
    session.commit()
    return result.rowcount == 1  # type: ignore[attr-defined]


def mark_sent(session: Session, message_id: int, now: datetime) -> bool:
    return _settle(session, message_id, status=MessageStatus.sent, sent_at=now, last_error="")


def mark_retry(session: Session, message: Message, now: datetime, error: str) -> datetime | None:
    """Back to pending after a backoff; failed once attempts are exhausted. Returns the retry time."""
    if message.attempts >= MAX_ATTEMPTS:
        mark_failed(session, message.id or 0, f"gave up after {message.attempts} attempts: {error}")
        return None
    retry_at = now + backoff(message.attempts)
    _settle(session, message.id or 0, status=MessageStatus.pending, scheduled_at=retry_at,
            last_error=error[:1000], enqueued_at=now)
    return retry_at


def mark_failed(session: Session, message_id: int, error: str) -> bool:
    return _settle(session, message_id, status=MessageStatus.failed, last_error=error[:1000])


def cancel(session: Session, message_id: int, reason: str) -> bool:
    return _settle(session, message_id, status=MessageStatus.cancelled, last_error=reason[:1000])


def due_for_enqueue(session: Session, now: datetime, limit: int = 5000) -> list[tuple[int, datetime]]:
    """Pending rows whose broker hand-off may be lost, and sends whose lease expired; marked enqueued."""
    stale = now - STALE_ENQUEUE
    lost = and_(
        Message.status == MessageStatus.pending,
        Message.scheduled_at <= now,  # type: ignore[operator]
        or_(Message.enqueued_at.is_(None), Message.enqueued_at < stale),  # type: ignore[union-attr,operator]
    )
    expired = and_(Message.status == MessageStatus.sending, Message.lease_until < now)  # type: ignore[operator]
    rows = session.execute(
        select(Message.id, Message.scheduled_at).where(or_(lost, expired)).order_by(Message.id).limit(limit)  # type: ignore[arg-type]
    ).all()
    ids = [r[0] for r in rows]
    if ids:
        session.execute(update(Message).where(Message.id.in_(ids)).values(enqueued_at=now))  # type: ignore[union-attr]
        session.commit()
    return [(r[0], r[1]) for r in rows]

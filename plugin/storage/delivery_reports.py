"""Reports on accepted messages (bounces, complaints): kept, and turned into suppressions.

A hard bounce or a complaint suppresses the address at once. A soft bounce suppresses it only once
the address has bounced softly SOFT_LIMIT times within SOFT_WINDOW (a full mailbox or a receiver
refusing this once is no reason to stop; the same every week is). The address is the one the message
was sent to, and the shop is the message's: a report cannot name another address or shop.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlmodel import Session, col

from plugin.storage.consent import suppress
from plugin.storage.models import DeliveryReport, Message, ReportKind
from plugin.storage.upsert import insert_ignore, table_of

__all__ = ["Report", "record_report", "SOFT_LIMIT", "SOFT_WINDOW", "SUPPRESSION_REASONS"]

SOFT_LIMIT = 3
SOFT_WINDOW = timedelta(days=30)
SUPPRESSION_REASONS = {ReportKind.hard_bounce: "bounced", ReportKind.soft_bounce: "bounced",
                       ReportKind.complaint: "complained"}


@dataclass(frozen=True)
class Report:
    """What a report says about one message."""

    kind: ReportKind
    status: str = ""  # enhanced status code, "" when the report has none
    detail: str = ""


def record_report(session: Session, message: Message, report: Report, now: datetime) -> str:
    """Keep the report and suppress when it calls for it (no commit); what happened:
    "suppressed", "recorded" (a soft bounce below the limit) or "duplicate" (seen before)."""
    first = insert_ignore(session, table_of(DeliveryReport), [{
        "shop_id": message.shop_id, "message_id": message.id, "channel": message.channel, "address": message.to_address,
        "kind": report.kind.value, "status": report.status[:16], "detail": report.detail[:500], "received_at": now}],
        ["message_id", "kind"])
    if not first or not message.to_address:  # a repeat, or a customer erased since (nothing to suppress)
        return "duplicate" if not first else "recorded"
    if report.kind == ReportKind.soft_bounce and _soft_bounces(session, message, now) < SOFT_LIMIT:
        return "recorded"
    source = {ReportKind.hard_bounce: f"hard bounce {report.status}".strip(),
              ReportKind.soft_bounce: f"{SOFT_LIMIT} soft bounces in {SOFT_WINDOW.days} days",
              ReportKind.complaint: "spam complaint"}[report.kind]
    suppress(session, message.shop_id, message.channel, message.to_address, SUPPRESSION_REASONS[report.kind], now,
             source=source)
    return "suppressed"


def _soft_bounces(session: Session, message: Message, now: datetime) -> int:
    return int(session.execute(select(func.count()).where(
        col(DeliveryReport.shop_id) == message.shop_id, col(DeliveryReport.channel) == message.channel,
        col(DeliveryReport.address) == message.to_address, col(DeliveryReport.kind) == ReportKind.soft_bounce.value,
        col(DeliveryReport.received_at) > now - SOFT_WINDOW)).scalar_one())

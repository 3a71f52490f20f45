"""What receivers report about a message after the channel accepted it: bounces and complaints."""
from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Index, String, UniqueConstraint
from sqlmodel import Field, SQLModel

__all__ = ["DeliveryReport", "ReportKind"]


class ReportKind(StrEnum):
    hard_bounce = "hard_bounce"  # the address does not exist or is disabled: suppressed at once
    soft_bounce = "soft_bounce"  # full mailbox, refused this time, gave up retrying: suppressed when repeated
    complaint = "complaint"  # the recipient marked it as spam (ARF): suppressed at once


class DeliveryReport(SQLModel, table=True):
    """One report about one message; a report delivered twice (an MTA retrying) is kept once."""

    __tablename__ = "delivery_reports"
    __table_args__ = (
        UniqueConstraint("message_id", "kind", name="uq_delivery_reports_message_kind"),
        # Soft bounces of one address in a window, and the customer page's list.
        Index("ix_delivery_reports_address", "shop_id", "channel", "address", "received_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    shop_id: int = Field(foreign_key="shops.id")
    message_id: int = Field(foreign_key="messages.id")
    channel: str = Field(max_length=16)
    address: str = Field(max_length=255)  # the message's to_address: what was sent to, not what the report claims
    kind: ReportKind = Field(sa_type=String(16))
    status: str = Field(default="", max_length=16)  # enhanced status code (RFC 3463), e.g. 5.1.1; "" when none
    detail: str = Field(default="", max_length=500)  # the receiver's diagnostic or the complaint's feedback type
    received_at: datetime

"""A customer's personal data: exported on request, and erased for real when a customer or a
shop asks (Shopify's `customers/data_request`, `customers/redact`, `shop/redact`; the same for
any platform's deletion request).

Erasure keeps what a merchant's reports need and nobody can be found by: the customer row stays
(orders, messages and conversions still point at it) but its email, name, LINE id, external id
and consent are cleared; messages lose their address and subject and any not yet sent is
cancelled; click URLs, carts, browse events, visitor bindings, consent records, suppressions and
survey comments for them are deleted or emptied. Orders, revenue and survey scores stay as
anonymous aggregates. Every change is one set-based statement; the caller commits.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from typing import cast as typing_cast

from sqlalchemy import CursorResult, String, cast, delete, literal, select, update
from sqlmodel import Session, col

from plugin.storage.models import (
    BrowseEvent,
    Cart,
    CartLine,
    ConsentRecord,
    Customer,
    DeliveryReport,
    LineLink,
    LineLinkCode,
    Message,
    MessageEvent,
    MessageStatus,
    Order,
    OrderLine,
    Shop,
    Suppression,
    SurveyAnswer,
    VisitorBinding,
)
from plugin.storage.rollup import count_cancelling

__all__ = ["export_customer", "redact_customers", "redact_shop", "Redaction", "REDACTED_REASON"]

REDACTED_REASON = "redacted"


@dataclass(frozen=True)
class Redaction:
    customers: int
    messages: int
    cancelled: int


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def export_customer(session: Session, shop_id: int, customer_id: int) -> dict[str, Any] | None:
    """Everything Okaeri holds about one customer of one shop, as JSON-ready data (None if unknown)."""
    customer = session.get(Customer, customer_id)
    if customer is None or customer.shop_id != shop_id:
        return None
    addresses = [a for a in (customer.email, customer.line_user_id) if a]
    orders = session.execute(select(Order).where(col(Order.shop_id) == shop_id, col(Order.customer_id) == customer_id)
                             .order_by(col(Order.ordered_at))).scalars().all()
    lines = session.execute(select(OrderLine).where(col(OrderLine.shop_id) == shop_id,
                                                    col(OrderLine.order_id).in_([o.id for o in orders]))).scalars().all()
    messages = session.execute(select(Message).where(col(Message.shop_id) == shop_id, col(Message.customer_id) == customer_id)
                               .order_by(col(Message.id))).scalars().all()
    events = session.execute(select(MessageEvent).where(col(MessageEvent.shop_id) == shop_id,
                                                        col(MessageEvent.message_id).in_([m.id for m in messages]))
                             ).scalars().all()
    consent = session.execute(select(ConsentRecord).where(col(ConsentRecord.shop_id) == shop_id,
                                                          col(ConsentRecord.address).in_(addresses))
                              .order_by(col(ConsentRecord.recorded_at))).scalars().all()
    answers = session.execute(select(SurveyAnswer).where(col(SurveyAnswer.shop_id) == shop_id,
                                                         col(SurveyAnswer.customer_id) == customer_id)).scalars().all()
    return {
        "customer": {"id": customer.id, "external_id": customer.external_id, "email": customer.email,
                     "name": customer.name, "line_user_id": customer.line_user_id,
                     "email_consent": customer.email_consent, "line_consent": customer.line_consent,
                     "points_balance": customer.points_balance, "points_expire_at": _iso(customer.points_expire_at),
                     "last_order_at": _iso(customer.last_order_at), "created_at": _iso(customer.created_at)},
        "orders": [{"external_id": o.external_id, "ordered_at": _iso(o.ordered_at), "total": o.total,
                    "currency": o.currency, "canceled": o.canceled,
                    "lines": [{"name": ln.name, "product": ln.product_external_id, "quantity": ln.quantity,
                               "unit_price": ln.unit_price} for ln in lines if ln.order_id == o.id]} for o in orders],
        "messages": [{"scenario": m.scenario_key, "channel": m.channel, "to": m.to_address, "subject": m.subject,
                      "status": str(m.status), "scheduled_at": _iso(m.scheduled_at), "sent_at": _iso(m.sent_at)}
                     for m in messages],
        "message_events": [{"message": e.message_id, "kind": e.kind, "url": e.url, "at": _iso(e.occurred_at)}
                           for e in events],
        "consent_records": [{"channel": c.channel, "address": c.address, "consented": c.consented,
                             "recorded_at": _iso(c.recorded_at)} for c in consent],
        "survey_answers": [{"score": a.score, "comment": a.comment, "updated_at": _iso(a.updated_at)} for a in answers],
    }


def redact_customers(session: Session, shop_id: int, customer_ids: list[int], now: datetime) -> Redaction:
    """Erase the personal data of these customers of this shop (other shops' rows are never touched)."""
    ids = [i for i in customer_ids if i]
    if not ids:
        return Redaction(0, 0, 0)
    people = select(col(Customer.id)).where(col(Customer.shop_id) == shop_id, col(Customer.id).in_(ids))
    addresses = [a for row in session.execute(select(col(Customer.email), col(Customer.line_user_id))
                                              .where(col(Customer.shop_id) == shop_id, col(Customer.id).in_(ids)))
                 for a in row if a]
    addresses += [f"{account}:{user}" for account, user in session.execute(  # LINE addresses (plugin.channels.line)
        select(col(LineLink.account_id), col(LineLink.line_user_id)).where(col(LineLink.shop_id) == shop_id,
                                                                           col(LineLink.customer_id).in_(ids)))]
    return _erase(session, shop_id, people, addresses, now)


def redact_shop(session: Session, shop_id: int, now: datetime) -> Redaction:
    """Erase every customer's personal data of a shop and the shop's own contact details and token."""
    people = select(col(Customer.id)).where(col(Customer.shop_id) == shop_id)
    report = _erase(session, shop_id, people, None, now)
    session.execute(update(Shop).where(col(Shop.id) == shop_id).values(
        owner_email="", sender_address="", access_token_encrypted=""))
    return report


def _erase(session: Session, shop_id: int, people: Any, addresses: list[str] | None, now: datetime) -> Redaction:
    messages = select(col(Message.id)).where(col(Message.shop_id) == shop_id, col(Message.customer_id).in_(people))
    count_cancelling(session, REDACTED_REASON, col(Message.shop_id) == shop_id, col(Message.customer_id).in_(people))
    cancelled = _count(session.execute(
        update(Message).where(col(Message.shop_id) == shop_id, col(Message.customer_id).in_(people),
                              col(Message.status) == MessageStatus.pending)
        .values(status=MessageStatus.cancelled, last_error=REDACTED_REASON, lease_until=None)))
    scrubbed = _count(session.execute(update(Message).where(col(Message.shop_id) == shop_id,
                                                            col(Message.customer_id).in_(people))
                                      .values(to_address="", subject="")))
    session.execute(update(MessageEvent).where(col(MessageEvent.shop_id) == shop_id,
                                               col(MessageEvent.message_id).in_(messages)).values(url=""))
    session.execute(delete(DeliveryReport).where(col(DeliveryReport.shop_id) == shop_id,
                                                 col(DeliveryReport.message_id).in_(messages)))  # they name the address
    carts = select(col(Cart.id)).where(col(Cart.shop_id) == shop_id, col(Cart.customer_id).in_(people))
    session.execute(delete(CartLine).where(col(CartLine.shop_id) == shop_id, col(CartLine.cart_id).in_(carts)))
    session.execute(delete(Cart).where(col(Cart.shop_id) == shop_id, col(Cart.customer_id).in_(people)))
    session.execute(delete(BrowseEvent).where(col(BrowseEvent.shop_id) == shop_id, col(BrowseEvent.customer_id).in_(people)))
    session.execute(delete(VisitorBinding).where(col(VisitorBinding.shop_id) == shop_id,
                                                 col(VisitorBinding.customer_id).in_(people)))
    session.execute(update(SurveyAnswer).where(col(SurveyAnswer.shop_id) == shop_id, col(SurveyAnswer.customer_id).in_(people))
                    .values(comment=""))
    session.execute(delete(LineLinkCode).where(col(LineLinkCode.shop_id) == shop_id, col(LineLinkCode.customer_id).in_(people)))
    session.execute(delete(LineLink).where(col(LineLink.shop_id) == shop_id, col(LineLink.customer_id).in_(people)))
    consent = delete(ConsentRecord).where(col(ConsentRecord.shop_id) == shop_id)
    suppressions = delete(Suppression).where(col(Suppression.shop_id) == shop_id)
    if addresses is not None:
        consent = consent.where(col(ConsentRecord.address).in_(addresses))
        suppressions = suppressions.where(col(Suppression.address).in_(addresses))
    session.execute(consent)
    session.execute(suppressions)
    count = _count(session.execute(
        update(Customer).where(col(Customer.shop_id) == shop_id, col(Customer.id).in_(people))
        .values(email="", name="", line_user_id=None, email_consent=False, email_consent_at=None, line_consent=False,
                external_id=literal("redacted-") + cast(col(Customer.id), String), updated_at=now)))
    return Redaction(customers=count, messages=scrubbed, cancelled=cancelled)


def _count(result: Any) -> int:
    """Rows an UPDATE matched (a CursorResult's rowcount)."""
    return int(typing_cast("CursorResult[Any]", result).rowcount or 0)

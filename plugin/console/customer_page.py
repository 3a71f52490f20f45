"""The customer page: find a customer, then see why they did or did not get each message.

Every query names the shop: a customer of another shop is not found, never shown. Reads are
bounded (one page of hits, the latest orders, one page of the timeline) and use the indexes that
start with shop_id, so a shop of a million customers answers as fast as a small one.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, func, or_, select, true
from sqlmodel import Session, col

from plugin.channels.base import Channel
from plugin.channels.layout import money
from plugin.clock import as_utc
from plugin.console.customer_texts import HELD_BACK, REPORTS, STATES, customer_texts, reason_text
from plugin.console.steps import step_label
from plugin.gates.decisions import explain
from plugin.storage.db import MAX_ROW_ID
from plugin.storage.delivery_reports import SOFT_WINDOW
from plugin.storage.models import (
    ConsentRecord,
    Conversion,
    Customer,
    DeliveryReport,
    Message,
    MessageEvent,
    MessageStatus,
    Order,
    OrderLine,
    ReportKind,
    Shop,
    Suppression,
)
from scenarios import SCENARIOS

__all__ = ["CustomerHit", "SearchPage", "Profile", "TimelineRow", "search_customers", "customer_profile",
           "PER_PAGE", "MAX_QUERY", "MAX_PAGE"]

PER_PAGE = 20
MAX_QUERY = 100  # longer is no email nor name: refused before it reaches SQL
MAX_PAGE = 500  # deeper pages are an OFFSET scan nobody reads: narrow the search instead
ORDERS_SHOWN = 20
RECORDS_SHOWN = 10
DEFERRED_TOKENS = ("cap=deferred", "quiet=deferred", "delivery=deferred")


@dataclass(frozen=True)
class CustomerHit:
    id: int
    external_id: str
    name: str
    email: str
    last_order: str


@dataclass(frozen=True)
class SearchPage:
    query: str
    hits: list[CustomerHit]
    page: int
    has_next: bool


@dataclass(frozen=True)
class OrderView:
    external_id: str
    at: str
    total: str
    items: list[str]
    canceled: bool


@dataclass(frozen=True)
class ChannelConsent:
    channel: str
    address: str
    consented: bool
    suppressed_reason: str  # "" when the address is not suppressed: unsubscribed, bounced, blocked
    suppressed_at: str
    records: list[dict[str, str]]
    reports: list[dict[str, str]] = field(default_factory=list)  # bounces and complaints, newest first
    soft_recent: int = 0  # soft bounces within the window that suppresses at its limit


@dataclass(frozen=True)
class TimelineRow:
    id: int
    scenario: str
    step: str
    channel: str
    state: str  # a key of customer_texts.STATES
    state_label: str
    created: str
    scheduled: str
    sent: str
    outcome: str  # why it ended as it did (held back, cancelled, failed), in the merchant's language
    reasons: list[str]  # each gate's decision, in gate order
    error: str  # the recorded error as written, where the outcome does not already say it
    opens: str = ""
    clicks: str = ""
    conversions: list[str] = field(default_factory=list)
    reports: list[str] = field(default_factory=list)  # what the receiving side reported (bounce, complaint)


@dataclass(frozen=True)
class Profile:
    customer: Customer
    last_order: str
    orders: list[OrderView]
    order_count: int
    order_total: str
    points_balance: int
    points_expires: str
    points_source: str
    points_rule: bool  # the expiry follows the shop's rule (set on the rules page)
    consent: list[ChannelConsent]
    timeline: list[TimelineRow]
    page: int
    has_next: bool


def _local(moment: datetime | None, timezone: str, fmt: str = "%Y-%m-%d %H:%M") -> str:
    return as_utc(moment).astimezone(ZoneInfo(timezone)).strftime(fmt) if moment else ""


def search_customers(session: Session, shop: Shop, query: str, page: int = 1) -> SearchPage:
    """One page of the shop's customers: those whose id, shop number or email is `query` first,
    then (by id) those whose email starts with it, for an address, or whose name or email
    contains it, for anything else but a number."""
    query = query.strip()[:MAX_QUERY]
    if not query:
        return SearchPage(query, [], page, False)
    exact = _exact_ids(session, shop.id or 0, query)
    rows: list[Customer] = []
    skip = (page - 1) * PER_PAGE
    if skip < len(exact):
        rows = list(session.execute(select(Customer).where(col(Customer.shop_id) == shop.id, col(Customer.id).in_(exact))
                                    .order_by(col(Customer.id))).scalars())[skip:skip + PER_PAGE + 1]
    wanted = PER_PAGE + 1 - len(rows)
    partial = _partial(query)
    if wanted > 0 and partial is not None:
        rows += session.execute(select(Customer).where(
            col(Customer.shop_id) == shop.id, col(Customer.id).not_in(exact) if exact else true(), partial)
            .order_by(col(Customer.id)).offset(max(0, skip - len(exact))).limit(wanted)).scalars().all()
    hits = [CustomerHit(c.id or 0, c.external_id, c.name, c.email, _local(c.last_order_at, shop.timezone, "%Y-%m-%d"))
            for c in rows[:PER_PAGE]]
    return SearchPage(query, hits, page, len(rows) > PER_PAGE)


def _partial(query: str) -> ColumnElement[bool] | None:
    """What a partial match means for this query; None for a number (ids match exactly).

    An address is a prefix of the email: a range on the (shop_id, email) index. Anything else
    is a part of the name or of the email (a scan of the shop's customers, stopped at a page):
    LIKE on the stored text, not ILIKE or lower() on every row (names are Japanese; emails are
    compared in lower case), which keeps the scan of a million customers under a second."""
    if query.isdigit():
        return None
    lowered = query.lower()
    if "@" in lowered:
        return and_(col(Customer.email) >= lowered, col(Customer.email) < lowered + "\U0010ffff",
                    col(Customer.email).startswith(lowered, autoescape=True))
    return or_(col(Customer.name).contains(query, autoescape=True), col(Customer.email).contains(lowered, autoescape=True))


def _exact_ids(session: Session, shop_id: int, query: str) -> list[int]:
    """Customers named exactly: by Okaeri's id, the shop's own customer number, or the email (any case)."""
    named = [col(Customer.external_id) == query, col(Customer.email) == query, col(Customer.email) == query.lower()]
    if query.isdigit() and int(query) <= MAX_ROW_ID:
        named.append(col(Customer.id) == int(query))
    ids = session.execute(select(col(Customer.id)).where(col(Customer.shop_id) == shop_id, or_(*named))
                          .limit(PER_PAGE)).scalars()
    return sorted(set(ids))


def customer_profile(session: Session, shop: Shop, customer_id: int, *, lang: str, channels: Mapping[str, Channel],
                     expiry_from_platform: bool, platform_title: str, page: int = 1,
                     now: datetime | None = None) -> Profile | None:
    """Everything the page shows of one customer of this shop; None when the shop has no such customer.
    `now` dates the recent soft bounces (none are counted without it)."""
    customer = session.execute(select(Customer).where(
        col(Customer.shop_id) == shop.id, col(Customer.id) == customer_id)).scalar_one_or_none()
    if customer is None:
        return None
    orders, count, total = _orders(session, shop, customer_id, lang)
    timeline, has_next = _timeline(session, shop, customer_id, lang, page)
    return Profile(customer=customer, last_order=_local(customer.last_order_at, shop.timezone),
                   orders=orders, order_count=count, order_total=money(total, shop.currency, lang),
                   points_balance=customer.points_balance,
                   points_expires=_local(customer.points_expire_at, shop.timezone, "%Y-%m-%d"),
                   points_source=_expiry_source(shop, customer, lang, expiry_from_platform, platform_title),
                   points_rule=not expiry_from_platform,
                   consent=_consent(session, shop, customer, channels, lang, now), timeline=timeline, page=page, has_next=has_next)


def _orders(session: Session, shop: Shop, customer_id: int, lang: str) -> tuple[list[OrderView], int, int]:
    mine = and_(col(Order.shop_id) == shop.id, col(Order.customer_id) == customer_id)
    count, total = session.execute(select(func.count(), func.coalesce(func.sum(Order.total), 0))
                                   .where(mine, col(Order.canceled).is_(False))).one()
    latest = session.execute(select(Order).where(mine).order_by(col(Order.ordered_at).desc(), col(Order.id).desc())
                             .limit(ORDERS_SHOWN)).scalars().all()
    items: defaultdict[int, list[str]] = defaultdict(list)
    if latest:
        for order_id, name, quantity in session.execute(select(col(OrderLine.order_id), col(OrderLine.name), col(OrderLine.quantity))
                                                        .where(col(OrderLine.shop_id) == shop.id,
                                                               col(OrderLine.order_id).in_([o.id for o in latest]))
                                                        .order_by(col(OrderLine.id))):
            items[order_id].append(f"{name} × {quantity}" if quantity != 1 else name)
    views = [OrderView(o.external_id, _local(o.ordered_at, shop.timezone), money(o.total, o.currency, lang), items[o.id or 0],
                       o.canceled) for o in latest]
    return views, int(count), int(total)


def _expiry_source(shop: Shop, customer: Customer, lang: str, expiry_from_platform: bool, platform_title: str) -> str:
    """Where the expiry date comes from: the platform's own data, or the shop's rule of N months
    after the last order (`Shop.points_expiry_months`, for platforms whose data has no expiry)."""
    words = customer_texts(lang)
    if expiry_from_platform:
        return words["from_platform"].format(platform=platform_title)
    months = shop.points_expiry_months
    if customer.last_order_at is None:
        return words["from_rule_no_order"].format(months=months)
    return words["from_rule"].format(months=months, last_order=_local(customer.last_order_at, shop.timezone, "%Y-%m-%d"))


def _consent(session: Session, shop: Shop, customer: Customer, channels: Mapping[str, Channel],
             lang: str = "ja", now: datetime | None = None) -> list[ChannelConsent]:
    """Per channel: the address, whether the customer may be sent to, suppression and the record."""
    out = []
    for name, channel in channels.items():
        address = str(session.execute(select(channel.address()).where(col(Customer.id) == customer.id)).scalar() or "")
        reason, since, records = "", "", []
        reports: list[dict[str, str]] = []
        if address:
            where = (col(Suppression.shop_id) == shop.id, col(Suppression.channel) == name, col(Suppression.address) == address)
            held = session.execute(select(Suppression).where(*where)).scalar_one_or_none()
            if held is not None:
                reason, since = held.reason, _local(held.created_at, shop.timezone)
            records = [{"at": _local(r.recorded_at, shop.timezone), "consented": "1" if r.consented else "", "source": r.source}
                       for r in session.execute(select(ConsentRecord).where(
                           col(ConsentRecord.shop_id) == shop.id, col(ConsentRecord.channel) == name,
                           col(ConsentRecord.address) == address)
                           .order_by(col(ConsentRecord.recorded_at).desc(), col(ConsentRecord.id).desc())
                           .limit(RECORDS_SHOWN)).scalars()]
            reports = _reports(session, shop, name, address, lang, now)
        soft = sum(1 for r in reports if r["kind"] == ReportKind.soft_bounce and r["recent"])
        out.append(ChannelConsent(name, address, channel.accepts(customer) and not reason, reason, since, records,
                                  reports, soft))
    return out


def _reports(session: Session, shop: Shop, channel: str, address: str, lang: str,
             now: datetime | None) -> list[dict[str, str]]:
    """The latest bounces and complaints of one address (the index on shop, channel, address, time)."""
    labels = REPORTS["en" if lang == "en" else "ja"]
    rows = session.execute(select(DeliveryReport).where(
        col(DeliveryReport.shop_id) == shop.id, col(DeliveryReport.channel) == channel, col(DeliveryReport.address) == address)
        .order_by(col(DeliveryReport.received_at).desc(), col(DeliveryReport.id).desc()).limit(RECORDS_SHOWN)).scalars()
    return [{"at": _local(r.received_at, shop.timezone), "kind": r.kind, "label": labels.get(r.kind, r.kind),
             "status": r.status, "detail": r.detail, "recent": "1" if now is not None and as_utc(r.received_at) > now - SOFT_WINDOW else ""}
            for r in rows]


def _timeline(session: Session, shop: Shop, customer_id: int, lang: str, page: int) -> tuple[list[TimelineRow], bool]:
    """One page of the customer's messages, newest first, each with why and what it earned."""
    messages = session.execute(select(Message).where(col(Message.shop_id) == shop.id, col(Message.customer_id) == customer_id)
                               .order_by(col(Message.created_at).desc(), col(Message.id).desc())
                               .offset((page - 1) * PER_PAGE).limit(PER_PAGE + 1)).scalars().all()
    shown = list(messages[:PER_PAGE])
    ids = [m.id or 0 for m in shown]
    events = _events(session, shop, ids, lang)
    earned = _conversions(session, shop, ids, lang)
    reported = _reported(session, shop, ids, lang)
    rows = []
    for m in shown:
        mid = m.id or 0
        rows.append(replace(_row(m, shop, lang), opens=events.get((mid, "open"), ""), clicks=events.get((mid, "click"), ""),
                            conversions=earned.get(mid, []), reports=reported.get(mid, [])))
    return rows, len(messages) > PER_PAGE


def _row(m: Message, shop: Shop, lang: str) -> TimelineRow:
    state = _state(m)
    reasons = explain(m.decision, lang, shop.timezone) if m.decision else []
    recorded = reason_text(m.last_error, lang) if m.last_error else None
    error = m.last_error if state in ("failed", "retrying") or not recorded else ""
    scenario = SCENARIOS.get(m.scenario_key)
    name = (scenario.name_en if lang == "en" else scenario.name_ja) if scenario else m.scenario_key
    return TimelineRow(id=m.id or 0, scenario=name, step=step_label(m.scenario_key, m.trigger_step, lang), channel=m.channel, state=state,
                       state_label=STATES["en" if lang == "en" else "ja"][state], created=_local(m.created_at, shop.timezone),
                       scheduled=_local(m.scheduled_at, shop.timezone), sent=_local(m.sent_at, shop.timezone),
                       outcome=recorded or "", reasons=reasons, error=error)


def _state(m: Message) -> str:
    """What happened to the message, as the merchant names it."""
    status = MessageStatus(m.status)
    if status == MessageStatus.pending:
        if m.last_error:
            return "retrying"
        return "deferred" if any(token in m.decision for token in DEFERRED_TOKENS) else "scheduled"
    if status == MessageStatus.cancelled:
        return "held_back" if m.last_error.startswith(HELD_BACK) else "cancelled"
    return {MessageStatus.sending: "sending", MessageStatus.sent: "sent", MessageStatus.failed: "failed",
            MessageStatus.control: "control"}.get(status, "cancelled")


def _events(session: Session, shop: Shop, ids: Sequence[int], lang: str) -> dict[tuple[int, str], str]:
    """Opens and clicks per message: how many, and the first, in the shop's time."""
    if not ids:
        return {}
    words = customer_texts(lang)
    rows = session.execute(select(col(MessageEvent.message_id), col(MessageEvent.kind), func.count(), func.min(MessageEvent.occurred_at))
                           .where(col(MessageEvent.shop_id) == shop.id, col(MessageEvent.message_id).in_(ids),
                                  col(MessageEvent.kind).in_(("open", "click")))
                           .group_by(col(MessageEvent.message_id), col(MessageEvent.kind)))
    return {(mid, kind): words["times"].format(count=n, at=_local(first, shop.timezone)) for mid, kind, n, first in rows}


def _reported(session: Session, shop: Shop, ids: Sequence[int], lang: str) -> dict[int, list[str]]:
    """What the receiving side reported of each message: the kind, its status code, when."""
    if not ids:
        return {}
    labels = REPORTS["en" if lang == "en" else "ja"]
    out: defaultdict[int, list[str]] = defaultdict(list)
    for r in session.execute(select(DeliveryReport).where(col(DeliveryReport.shop_id) == shop.id,
                                                          col(DeliveryReport.message_id).in_(ids))
                             .order_by(col(DeliveryReport.received_at))).scalars():
        out[r.message_id].append(" ".join(part for part in (labels.get(r.kind, r.kind), r.status,
                                                            f"({_local(r.received_at, shop.timezone)})") if part))
    return dict(out)


def _conversions(session: Session, shop: Shop, ids: Sequence[int], lang: str) -> dict[int, list[str]]:
    """The orders attributed to each message (last click within the window)."""
    if not ids:
        return {}
    words = customer_texts(lang)
    out: defaultdict[int, list[str]] = defaultdict(list)
    for mid, ref, revenue, at in session.execute(
            select(col(Conversion.message_id), col(Order.external_id), col(Conversion.revenue), col(Conversion.ordered_at))
            .join(Order, col(Order.id) == Conversion.order_id)
            .where(col(Conversion.shop_id) == shop.id, col(Conversion.message_id).in_(ids))
            .order_by(col(Conversion.ordered_at))):
        out[mid].append(words["order_ref"].format(ref=ref, total=money(revenue, shop.currency, lang),
                                                  at=_local(at, shop.timezone)))
    return dict(out)

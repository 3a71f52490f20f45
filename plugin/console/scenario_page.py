"""What a scenario page shows: the preset's defaults, each step's numbers, its queue with why each
message waits, recent sends, and the customers a merchant can preview. All from SQL aggregates or
SQL-limited pages, never from loading a scenario's messages into Python."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, func, or_, select
from sqlalchemy.orm import aliased
from sqlmodel import Session, col

from plugin.clock import as_utc
from plugin.console.steps import ALL_STEPS, STEP_NAMES
from plugin.gates.decisions import Wait, current_wait, explain_wait
from plugin.gates.frequency_cap import LIVE
from plugin.gates.rules import ShopRules
from plugin.measurement.rollup import queued_in, step_figures
from plugin.storage.models import Customer, Message, MessageEvent, MessageStatus, Shop
from plugin.storage.models.messages import status_is
from plugin.storage.rollup import step_sql
from scenarios import SCENARIOS, Scenario, get_scenario

__all__ = ["DEFAULT_HOLDOUT", "QUEUE_PAGE", "Defaults", "StepNumbers", "Waiting", "Sent", "defaults", "step_numbers",
           "queue_page", "queue_total", "recent_sends", "find_customers", "customer_of", "STEP_NAMES"]

DEFAULT_HOLDOUT = 10  # what the one switch sets (plugin.console.scenarios.set_standard_scenarios)
QUEUE_PAGE = 20
RECENT = 20
FOUND = 10
MAX_QUERY = 100

# Step names live in plugin.console.steps (shared with the customer timeline); `_step_of` is
# their SQL twin over the trigger columns (plugin.storage.rollup.step_sql).


def _step_of(key: str) -> ColumnElement[str]:
    """The step a message of this preset belongs to, in SQL over its trigger columns."""
    return step_sql(key)


@dataclass(frozen=True)
class Defaults:
    """A preset's defaults, shown beside each field of its form."""

    delay_minutes: int
    holdout_percent: int
    subject: str
    body: str


def defaults(scenario: Scenario, shop: Shop) -> Defaults:
    copy = scenario.copy.get("ja" if shop.locale == "ja" else "en") or next(iter(scenario.copy.values()))
    return Defaults(int(scenario.default_delay.total_seconds() // 60), DEFAULT_HOLDOUT, copy.subject, copy.intro)


@dataclass(frozen=True)
class StepNumbers:
    step: str
    name: str
    sent: int
    opened: int
    clicked: int
    conversions: int
    revenue: int


def _has_event(kind: str) -> ColumnElement[bool]:
    return exists().where(col(MessageEvent.shop_id) == col(Message.shop_id), col(MessageEvent.message_id) == col(Message.id),
                          col(MessageEvent.kind) == kind)


def step_numbers(session: Session, shop: Shop, key: str, lang: str) -> list[StepNumbers]:
    """Sent, opened, clicked, conversions and revenue per step of the preset (every step listed,
    zeros too), all time, from the rollup (a row per step and day)."""
    names = STEP_NAMES.get(key, ALL_STEPS)
    found = step_figures(session, shop.id or 0, key)
    index = 1 if lang == "en" else 0
    return [StepNumbers(s, label[index], *found.get(s, (0, 0, 0, 0, 0))) for s, label in names.items()]


@dataclass(frozen=True)
class Waiting:
    """One pending message of the queue and why it waits, in the merchant's language."""

    message_id: int
    customer_id: int
    customer_name: str
    to_address: str
    scheduled_at: datetime
    step: str
    reason: str
    decision: str


def queue_total(session: Session, shop: Shop, key: str) -> int:
    """How many of the preset's messages wait to be sent."""
    return int(session.execute(select(func.count()).select_from(Message).where(
        status_is(MessageStatus.pending), queued_in(session, shop.id or 0), col(Message.scenario_key) == key)).scalar_one())


def queue_page(session: Session, shop: Shop, key: str, now: datetime, lang: str, page: int = 1) -> list[Waiting]:
    """One page of pending messages, soonest first, each with why it waits."""
    blocker = aliased(Message)
    blocker_when = func.coalesce(col(blocker.sent_at), col(blocker.scheduled_at))
    holder = (select(col(blocker.id)).where(  # the latest live message of the customer before this one's due time
        col(blocker.shop_id) == col(Message.shop_id), col(blocker.customer_id) == col(Message.customer_id),
        col(blocker.id) != col(Message.id), col(blocker.status).in_(LIVE), blocker_when < col(Message.scheduled_at))
        .order_by(blocker_when.desc()).limit(1).scalar_subquery())
    rows = session.execute(
        select(col(Message.id), col(Message.customer_id), col(Customer.name), col(Message.to_address), col(Message.scheduled_at),
               _step_of(key), col(Message.decision), col(Message.attempts), col(Message.last_error), holder.label("holder"))
        .join(Customer, col(Customer.id) == col(Message.customer_id))
        .where(status_is(MessageStatus.pending), queued_in(session, shop.id or 0), col(Message.scenario_key) == key)
        .order_by(col(Message.scheduled_at), col(Message.id)).offset((max(page, 1) - 1) * QUEUE_PAGE).limit(QUEUE_PAGE)).all()
    holders = {r.id: r for r in session.execute(
        select(col(Message.id), col(Message.scenario_key), col(Message.status), col(Message.sent_at), col(Message.scheduled_at))
        .where(col(Message.shop_id) == shop.id, col(Message.id).in_({r.holder for r in rows if r.holder})))} if rows else {}
    rules, names = ShopRules.of(shop), STEP_NAMES.get(key, ALL_STEPS)
    out = []
    for r in rows:
        reason = _reason(shop, rules, key, now, lang, r.decision, as_utc(r.scheduled_at), r.attempts, bool(r.last_error),
                         holders.get(r.holder))
        step = names.get(r[5], ("", ""))[1 if lang == "en" else 0]
        out.append(Waiting(r.id, r.customer_id, r.name, r.to_address, as_utc(r.scheduled_at), step, reason, r.decision))
    return out


def _reason(shop: Shop, rules: ShopRules, key: str, now: datetime, lang: str, decision: str, due: datetime,
            attempts: int, retried: bool, holder: Any) -> str:
    wait = current_wait(decision, due, now, retried)
    if wait == Wait.at_delivery:
        wait = Wait.quiet if _ends_quiet_hours(rules, due) else Wait.cap
    extra: dict[str, Any] = {}
    if wait == Wait.cap and holder is not None and holder.scenario_key in SCENARIOS:
        other = get_scenario(holder.scenario_key)
        extra = {"blocker": other.name(lang), "blocker_sent": holder.status == MessageStatus.sent,
                 "blocker_at": as_utc(holder.sent_at or holder.scheduled_at),
                 "blocker_higher": other.priority > get_scenario(key).priority}
    return explain_wait(wait, due, lang, shop.timezone, quiet=(shop.quiet_start_hour, shop.quiet_end_hour),
                        attempts=attempts, **extra)


def _ends_quiet_hours(rules: ShopRules, moment: datetime) -> bool:
    """True when `moment` is the end of the shop's quiet hours (a deferral to it was quiet hours')."""
    return rules.quiet_start != rules.quiet_end and rules.next_allowed(moment - timedelta(minutes=1)) == moment


@dataclass(frozen=True)
class Sent:
    message_id: int
    customer_id: int
    customer_name: str
    to_address: str
    sent_at: datetime | None
    step: str
    opened: bool
    clicked: bool


def recent_sends(session: Session, shop: Shop, key: str, lang: str, limit: int = RECENT) -> list[Sent]:
    """The preset's latest sent messages (newest written first: the id order is cheap to walk)."""
    names = STEP_NAMES.get(key, ALL_STEPS)
    rows = session.execute(
        select(col(Message.id), col(Message.customer_id), col(Customer.name), col(Message.to_address), col(Message.sent_at),
               _step_of(key), _has_event("open"), _has_event("click"))
        .join(Customer, col(Customer.id) == col(Message.customer_id))
        .where(col(Message.shop_id) == shop.id, col(Message.scenario_key) == key, col(Message.status) == MessageStatus.sent)
        .order_by(col(Message.id).desc()).limit(limit)).all()
    return [Sent(r[0], r[1], r[2], r[3], as_utc(r[4]) if r[4] else None, names.get(r[5], ("", ""))[1 if lang == "en" else 0],
                 bool(r[6]), bool(r[7])) for r in rows]


def _like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def find_customers(session: Session, shop: Shop, query: str, limit: int = FOUND) -> list[Customer]:
    """Customers with an email address matching an id (the shop's or the platform's), the start of an
    email, or part of a name (a query of digits is an id)."""
    query = query.strip()[:MAX_QUERY]
    if not query:
        return []
    match: list[ColumnElement[bool]] = [col(Customer.email).like(f"{_like(query)}%", escape="\\"),
                                        col(Customer.external_id) == query]
    if query.isdigit():  # an id, not part of a name
        match += [col(Customer.id) == int(query)] if len(query) < 19 else []
    else:
        match.append(col(Customer.name).like(f"%{_like(query)}%", escape="\\"))
    return list(session.execute(select(Customer).where(col(Customer.shop_id) == shop.id, col(Customer.email) != "", or_(*match))
                                .order_by(col(Customer.id)).limit(limit)).scalars())


def customer_of(session: Session, shop: Shop, customer_id: int) -> Customer | None:
    """The shop's customer with this id, or None (another shop's customer is no one here)."""
    return session.execute(select(Customer).where(and_(col(Customer.shop_id) == shop.id,
                                                       col(Customer.id) == customer_id))).scalar_one_or_none()

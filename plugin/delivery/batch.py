"""Deliver outbox messages in batches: claim, re-check every guard, render with fresh stock,
send once over pooled SMTP connections, settle in bulk."""
from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlmodel import Session

from plugin.channels.base import OutgoingMessage, PermanentFailure, TemporaryFailure
from plugin.clock import as_utc
from plugin.delivery.rendering import CopyError, render_message
from plugin.gates.audience import CAP_WINDOW, next_allowed
from plugin.gates.decisions import delivery_deferred
from plugin.storage import outbox
from plugin.storage.consent import suppress
from plugin.storage.models import (
    Customer,
    InstallState,
    Message,
    MessageStatus,
    ScenarioSetting,
    Shop,
    Suppression,
    rfc_message_id,
)
from scenarios import Scenario, get_scenario

if TYPE_CHECKING:
    from plugin.runtime import Runtime

__all__ = ["deliver", "deliver_batch", "prepare_batch", "unsubscribe_url", "shop_variables", "render_for"]

log = logging.getLogger("okaeri.outbox")


def unsubscribe_url(runtime: Runtime, shop_id: int, customer_id: int, message_id: int | None) -> str:
    """A signed link that works without login (and for RFC 8058 one-click POST)."""
    from plugin.measurement.links import unsubscribe_token

    return f"{runtime.settings.base_url}/u/{unsubscribe_token(runtime, shop_id, customer_id, message_id)}"


def shop_variables(shop: Shop) -> dict[str, Any]:
    """What templates know of the sender (特定電子メール法: name, address, contact)."""
    return {"name": shop.name, "address": shop.sender_address, "email": shop.owner_email,
            "url": shop.domain, "currency": shop.currency}


def render_for(runtime: Runtime, shop: Shop, scenario: Scenario, message: Message, customer_name: str,
               context: dict[str, Any], setting: ScenarioSetting | None, unsubscribe: str | None = None) -> tuple[str, str, str]:
    """Subject, text and HTML of one message, links wrapped for click tracking."""
    from plugin.measurement.links import click_url, open_url

    if unsubscribe is None:
        unsubscribe = unsubscribe_url(runtime, shop.id or 0, message.customer_id, message.id)
    variables = {**context, "shop": shop_variables(shop), "customer": {"name": customer_name}, "unsubscribe_url": unsubscribe}
    variables.setdefault("items", [])
    variables.setdefault("recommendations", [])
    variables.setdefault("cta_url", shop.domain)
    copy = scenario.copy["ja" if shop.locale == "ja" else "en"]
    return render_message(copy, shop.locale, variables,
                          subject=setting.subject_template if setting else None,
                          intro=setting.body_template if setting else None,
                          link=lambda url: click_url(runtime, message.id or 0, url),
                          pixel_url=open_url(runtime, message.id or 0))


def deliver(runtime: Runtime, message_id: int) -> tuple[str, datetime | None]:
    """Deliver one message; (outcome, retry_at) with outcome sent/skipped/cancelled/retry/failed."""
    outcomes = deliver_batch(runtime, [message_id])
    return outcomes.get(message_id, ("skipped", None))


def deliver_batch(runtime: Runtime, message_ids: Sequence[int]) -> dict[int, tuple[str, datetime | None]]:
    """Deliver what can be claimed of these messages; the rest belongs to someone else."""
    now = runtime.clock.now()
    with runtime.sessions() as session:
        claimed = outbox.claim_many(session, message_ids, now)
        if not claimed:
            return {}
        outgoing, outcomes, settle = prepare_batch(runtime, session, claimed)
        for message, mail in outgoing:
            outcomes[message.id or 0] = _send(runtime, session, message, mail, settle)
        outbox.settle_many(session, settle)
    return outcomes


def _send(runtime: Runtime, session: Session, message: Message, mail: OutgoingMessage,
          settle: list[dict[str, Any]]) -> tuple[str, datetime | None]:
    try:
        runtime.email.send(mail)
    except TemporaryFailure as exc:
        if message.attempts >= outbox.MAX_ATTEMPTS:
            settle.append({"id": message.id, "status": MessageStatus.failed, "last_error": f"gave up: {exc}"[:1000]})
            return "failed", None
        retry_at = runtime.clock.now() + outbox.backoff(message.attempts)
        settle.append({"id": message.id, "status": MessageStatus.pending, "scheduled_at": retry_at,
                       "last_error": str(exc)[:1000], "enqueued_at": None})  # handed over again when due
        return "retry", retry_at
    except PermanentFailure as exc:
        settle.append({"id": message.id, "status": MessageStatus.failed, "last_error": str(exc)[:1000]})
        suppress(session, message.shop_id, message.channel, message.to_address, "bounced", runtime.clock.now(),
                 source="smtp permanent failure")
        return "failed", None
    settle.append({"id": message.id, "status": MessageStatus.sent, "sent_at": runtime.clock.now(), "last_error": "",
                   "subject": mail.subject})  # bodies are not kept (nothing read them): subject, context and decision remain
    log.info("okaeri.outbox.sent", extra={"shop_id": message.shop_id, "message_id": message.id})
    return "sent", None


def prepare_batch(runtime: Runtime, session: Session, claimed: list[Message]) -> tuple[
        list[tuple[Message, OutgoingMessage]], dict[int, tuple[str, datetime | None]], list[dict[str, Any]]]:
    """Re-check guards for the whole batch, render survivors; cancellations go to `settle`."""
    outgoing: list[tuple[Message, OutgoingMessage]] = []
    outcomes: dict[int, tuple[str, datetime | None]] = {}
    settle: list[dict[str, Any]] = []

    def cancel(message: Message, reason: str) -> None:
        settle.append({"id": message.id, "status": MessageStatus.cancelled, "last_error": reason})
        outcomes[message.id or 0] = ("cancelled", None)

    shops = {shop_id: session.get(Shop, shop_id) for shop_id in {m.shop_id for m in claimed}}  # held: the identity map is weak
    customers = {c.id: c for c in session.execute(select(Customer).where(
        Customer.id.in_({m.customer_id for m in claimed}))).scalars()}  # type: ignore[union-attr]
    suppressed = set(session.execute(select(Suppression.shop_id, Suppression.address).where(
        Suppression.channel == "email", Suppression.address.in_({m.to_address for m in claimed}))).tuples())  # type: ignore[attr-defined]
    now = runtime.clock.now()
    zones = {shop_id: shop.timezone if shop else "Asia/Tokyo" for shop_id, shop in shops.items()}
    quiet = {shop_id: next_allowed(now, zone) != now for shop_id, zone in zones.items()}
    last_sent = _last_sent(session, claimed, now)
    groups: dict[tuple[int, str], list[Message]] = defaultdict(list)
    for m in sorted(claimed, key=lambda m: (-get_scenario(m.scenario_key).priority, m.id or 0)):
        customer = customers.get(m.customer_id)
        if customer is None or not customer.email_consent or (m.shop_id, m.to_address) in suppressed:
            cancel(m, "suppressed or no consent at delivery")
        elif m.customer_id in last_sent or quiet[m.shop_id]:
            # the frequency cap and quiet hours, again: a late worker must not break either
            at = next_allowed(max(now, last_sent.get(m.customer_id, now - CAP_WINDOW) + CAP_WINDOW), zones[m.shop_id])
            settle.append({"id": m.id, "status": MessageStatus.pending, "scheduled_at": at, "enqueued_at": None,
                           "decision": f"{m.decision};{delivery_deferred(at)}"[:1000]})
            outcomes[m.id or 0] = ("deferred", at)
        else:
            last_sent[m.customer_id] = runtime.clock.now()  # one per customer per batch, too
            groups[(m.shop_id, m.scenario_key)].append(m)
    for (shop_id, key), messages in groups.items():
        shop = shops[shop_id]
        if shop is None or shop.state != InstallState.active:
            for m in messages:
                cancel(m, "shop is not active")
            continue
        outgoing += _render_group(runtime, session, shop, get_scenario(key), messages, customers, cancel)
    return outgoing, outcomes, settle


def _last_sent(session: Session, claimed: list[Message], now: datetime) -> dict[int, datetime]:
    """Per customer of the batch: when another scenario message was last sent within the cap window."""
    rows = session.execute(select(Message.customer_id, func.max(Message.sent_at)).where(
        Message.shop_id.in_({m.shop_id for m in claimed}),  # type: ignore[attr-defined]  # the unique index's prefix
        Message.customer_id.in_({m.customer_id for m in claimed}), Message.status == MessageStatus.sent,  # type: ignore[attr-defined]
        Message.sent_at > now - CAP_WINDOW).group_by(Message.customer_id)).all()  # type: ignore[operator]
    return {cid: as_utc(at) for cid, at in rows}


def _render_group(runtime: Runtime, session: Session, shop: Shop, scenario: Scenario, messages: list[Message],
                  customers: dict[Any, Customer], cancel: Any) -> list[tuple[Message, OutgoingMessage]]:
    setting = session.execute(select(ScenarioSetting).where(
        ScenarioSetting.shop_id == shop.id, ScenarioSetting.scenario_key == scenario.key)).scalar_one_or_none()
    if setting is not None and not setting.enabled:
        for m in messages:
            cancel(m, "scenario switched off")
        return []
    wanted = scenario.still_wanted(session, messages)
    live = [m for m in messages if m.id in wanted]
    for m in messages:
        if m.id not in wanted:
            cancel(m, "exit condition met before delivery")
    contexts = scenario.contexts(session, shop, live) if live else {}
    ready = []
    for m in live:
        context = {**contexts.get(m.id or 0, {})}
        if scenario.needs_items and not context.get("items"):
            cancel(m, "stock: no promoted item is in stock any more")
            continue
        customer = customers[m.customer_id]
        unsubscribe = unsubscribe_url(runtime, shop.id or 0, m.customer_id, m.id)
        try:
            subject, text, html = render_for(runtime, shop, scenario, m, customer.name, context, setting, unsubscribe)
        except CopyError as exc:
            cancel(m, f"template: {exc}")
            continue
        ready.append((m, OutgoingMessage(message_id=rfc_message_id(m), to_address=m.to_address, to_name=customer.name,
                                         from_name=shop.name, subject=subject, body_text=text, body_html=html,
                                         unsubscribe_url=unsubscribe)))
    return ready

"""Deliver outbox messages in batches: claim, re-check every gate, render with fresh stock,
send once on the message's channel and mark each accepted one sent at once, settle the rest in bulk."""
from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from plugin.channels.base import OutgoingMessage, PermanentFailure, TemporaryFailure
from plugin.channels.layout import CopyError
from plugin.delivery.drafts import draft_for, unsubscribe_url
from plugin.delivery.heartbeat import LeaseHeartbeat
from plugin.gates import pipeline as gates
from plugin.gates.base import Batch, Cancel
from plugin.gates.decisions import delivery_deferred
from plugin.runtime import Runtime
from plugin.storage import outbox
from plugin.storage.consent import suppress
from plugin.storage.models import Customer, InstallState, Message, MessageStatus, ScenarioSetting, Shop
from scenarios import Scenario, get_scenario

__all__ = ["deliver", "deliver_batch", "prepare_batch", "Outcome"]

log = logging.getLogger("okaeri.outbox")
Outcome = tuple[str, datetime | None]  # sent/skipped/cancelled/deferred/retry/failed, and when to try again
Cancelling = Callable[[Message, str], None]


def deliver(runtime: Runtime, message_id: int) -> Outcome:
    """Deliver one message; (outcome, retry_at) with outcome sent/skipped/cancelled/retry/failed."""
    outcomes = deliver_batch(runtime, [message_id])
    return outcomes.get(message_id, ("skipped", None))


def deliver_batch(runtime: Runtime, message_ids: Sequence[int]) -> dict[int, Outcome]:
    """Deliver what can be claimed of these messages; the rest belongs to someone else.

    Each message the channel accepts is marked sent before the next is sent; the leases are
    renewed while the batch runs, and it stops sending once it cannot be sure they are still its own.
    """
    now = runtime.clock.now()
    with runtime.sessions() as session:
        claimed = outbox.claim_many(session, message_ids, now)
        if not claimed:
            return {}
        marks = outbox.SentMarks(runtime.engine)
        with LeaseHeartbeat(runtime.engine, runtime.clock, [m.id or 0 for m in claimed], now + outbox.LEASE) as lease:
            try:
                outgoing, outcomes, settle = prepare_batch(runtime, session, claimed)
                session.commit()  # no write of this session may be open while marks commit on their own connection
                outcomes.update(_send_all(runtime, session, outgoing, settle, marks, lease))
            finally:
                marks.close()
            if lease.held():  # else another worker may hold them by now: they are its to settle
                outbox.settle_many(session, settle)
    return outcomes


def _send_all(runtime: Runtime, session: Session, outgoing: list[tuple[Message, OutgoingMessage]],
              settle: list[dict[str, Any]], marks: outbox.SentMarks, lease: LeaseHeartbeat) -> dict[int, Outcome]:
    outcomes: dict[int, Outcome] = {}
    for position, (message, mail) in enumerate(outgoing):
        if not lease.held():
            log.warning("okaeri.outbox.lease-lost", extra={"message_id": message.id})
            break
        try:
            outcomes[message.id or 0] = _send(runtime, session, message, mail, settle, marks)
        except TemporaryFailure as exc:  # the relay cannot be reached: the rest would fail alike
            outcomes[message.id or 0] = _retry(runtime, message, str(exc), settle)
            for later, _ in outgoing[position + 1:]:
                outcomes[later.id or 0] = _retry(runtime, later, f"not tried: {exc}", settle)
            break
        lease.release(message.id or 0)
    return outcomes


def _send(runtime: Runtime, session: Session, message: Message, mail: OutgoingMessage,
          settle: list[dict[str, Any]], marks: outbox.SentMarks) -> Outcome:
    """Send one message; sent ones are marked at once, other outcomes go to `settle`.
    Raises TemporaryFailure when the relay is down (see `_send_all`)."""
    channel = runtime.channels[message.channel]  # the consent gate cancelled messages of unknown channels
    try:
        channel.send(mail)
    except TemporaryFailure as exc:
        if exc.relay_down:
            raise
        return _retry(runtime, message, str(exc), settle)
    except PermanentFailure as exc:
        settle.append({"id": message.id, "status": MessageStatus.failed, "last_error": str(exc)[:1000]})
        if exc.bad_address:
            suppress(session, message.shop_id, message.channel, message.to_address, channel.suppression_reason,
                     runtime.clock.now(), source=f"{channel.name} permanent failure")
            session.commit()  # now: the marks' connection must not wait behind this write (SQLite)
        return "failed", None
    # bodies are not kept (nothing read them): subject, context and decision remain
    marks.record(message.id or 0, mail.subject, runtime.clock.now())
    log.info("okaeri.outbox.sent", extra={"shop_id": message.shop_id, "message_id": message.id})
    return "sent", None


def _retry(runtime: Runtime, message: Message, error: str, settle: list[dict[str, Any]]) -> Outcome:
    """Back to pending with backoff, or failed once its attempts are used up."""
    if message.attempts >= outbox.MAX_ATTEMPTS:
        settle.append({"id": message.id, "status": MessageStatus.failed, "last_error": f"gave up: {error}"[:1000]})
        return "failed", None
    retry_at = runtime.clock.now() + outbox.backoff(message.attempts)
    settle.append({"id": message.id, "status": MessageStatus.pending, "scheduled_at": retry_at,
                   "last_error": error[:1000], "enqueued_at": None})  # handed over again when due
    return "retry", retry_at


def prepare_batch(runtime: Runtime, session: Session, claimed: list[Message]) -> tuple[
        list[tuple[Message, OutgoingMessage]], dict[int, Outcome], list[dict[str, Any]]]:
    """Re-check the gates for the whole batch, render survivors; cancellations go to `settle`."""
    outgoing: list[tuple[Message, OutgoingMessage]] = []
    outcomes: dict[int, Outcome] = {}
    settle: list[dict[str, Any]] = []

    def cancel(message: Message, reason: str) -> None:
        settle.append({"id": message.id, "status": MessageStatus.cancelled, "last_error": reason})
        outcomes[message.id or 0] = ("cancelled", None)

    shops = {shop_id: session.get(Shop, shop_id) for shop_id in {m.shop_id for m in claimed}}  # held: the identity map is weak
    customers = {c.id or 0: c for c in session.execute(select(Customer).where(
        col(Customer.id).in_({m.customer_id for m in claimed}))).scalars()}
    batch = Batch(session, runtime.clock.now(), claimed, shops, customers, runtime.channels)
    gates.prepare(batch)
    groups: dict[tuple[int, str], list[Message]] = defaultdict(list)
    for m in sorted(claimed, key=lambda m: (-get_scenario(m.scenario_key).priority, m.id or 0)):
        verdict = gates.recheck(batch, m)
        if isinstance(verdict, Cancel):
            cancel(m, verdict.reason)
        elif verdict is not None:  # deferred: a late worker must break neither the cap nor quiet hours
            settle.append({"id": m.id, "status": MessageStatus.pending, "scheduled_at": verdict.at, "enqueued_at": None,
                           "decision": f"{m.decision};{delivery_deferred(verdict.at)}"[:1000]})
            outcomes[m.id or 0] = ("deferred", verdict.at)
        else:
            gates.passed(batch, m)
            groups[(m.shop_id, m.scenario_key)].append(m)
    for (shop_id, key), messages in groups.items():
        shop = shops[shop_id]
        if shop is None or shop.state != InstallState.active:
            for m in messages:
                cancel(m, "shop is not active")
            continue
        outgoing += _render_group(runtime, session, shop, get_scenario(key), messages, customers, cancel)
    return outgoing, outcomes, settle


def _render_group(runtime: Runtime, session: Session, shop: Shop, scenario: Scenario, messages: list[Message],
                  customers: dict[int, Customer], cancel: Cancelling) -> list[tuple[Message, OutgoingMessage]]:
    setting = session.execute(select(ScenarioSetting).where(
        col(ScenarioSetting.shop_id) == shop.id, col(ScenarioSetting.scenario_key) == scenario.key)).scalar_one_or_none()
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
        context = contexts.get(m.id or 0, {})
        if (unusable := gates.content(m, context, scenario.needs_items)) is not None:
            cancel(m, unusable.reason)
            continue
        customer = customers[m.customer_id]
        unsubscribe = unsubscribe_url(runtime, shop.id or 0, m.customer_id, m.id)
        try:
            mail = runtime.channels[m.channel].render(
                draft_for(runtime, shop, scenario, m, customer.name, context, setting, unsubscribe))
        except CopyError as exc:  # the merchant's template fails for this customer: this message fails, once, with why
            m.status, m.last_error, m.lease_until = MessageStatus.failed, exc.record(), None
            session.commit()  # now: the batch's settling may have nothing else to write, and must not undo it
            log.warning("okaeri.outbox.template-failed", extra={"shop_id": m.shop_id, "message_id": m.id, "kind": exc.kind})
            continue
        ready.append((m, mail))
    return ready

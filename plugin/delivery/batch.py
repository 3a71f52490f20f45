"""Deliver outbox messages in batches: claim, re-check every gate, render with fresh stock,
send once on the message's channel and mark each accepted one at once, settle the batch in bulk.

The mark is the cheapest durable write the runtime has (`plugin.storage.marks`): a line in a
journal beside a SQLite database, a Redis SET when the broker is Redis, else the row itself marked
sent in the database. Every claim checks the marks before anything is sent: a message a dead
worker had sent and marked is settled as sent, not sent again."""
from __future__ import annotations

import logging
import threading
import weakref
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from plugin import metrics
from plugin.channels.base import OutgoingMessage, PermanentFailure, TemporaryFailure
from plugin.channels.layout import CopyError
from plugin.clock import as_utc
from plugin.delivery.drafts import draft_for, unsubscribe_url
from plugin.delivery.heartbeat import LeaseHeartbeat
from plugin.gates import pipeline as gates
from plugin.gates.base import Batch, Cancel
from plugin.gates.decisions import delivery_deferred
from plugin.runtime import Runtime
from plugin.storage import outbox
from plugin.storage.consent import suppress
from plugin.storage.marks import AcceptedMarks, JournalMarks, Mark, MarkUnavailable, PendingMark, RedisMarks
from plugin.storage.models import Customer, InstallState, Message, MessageStatus, ScenarioSetting, Shop
from scenarios import Scenario, get_scenario

__all__ = ["deliver", "deliver_batch", "prepare_batch", "marks_for", "settle_journaled", "Outcome"]

log = logging.getLogger("okaeri.outbox")
Outcome = tuple[str, datetime | None]  # sent/skipped/cancelled/deferred/retry/failed, and when to try again
Cancelling = Callable[[Message, str], None]


def deliver(runtime: Runtime, message_id: int) -> Outcome:
    """Deliver one message; (outcome, retry_at) with outcome sent/skipped/cancelled/retry/failed."""
    outcomes = deliver_batch(runtime, [message_id])
    return outcomes.get(message_id, ("skipped", None))


def deliver_batch(runtime: Runtime, message_ids: Sequence[int]) -> dict[int, Outcome]:
    """Deliver what can be claimed of these messages; the rest belongs to someone else.

    Each message the channel accepts is marked before the next is sent; the leases are renewed
    while the batch runs, and it stops sending once it cannot be sure they are still its own.
    """
    now = runtime.clock.now()
    store = marks_for(runtime)
    with runtime.sessions() as session:
        claimed = outbox.claim_many(session, message_ids, now)
        if not claimed:
            return {}
        by_id = {m.id or 0: (m.channel, m.scenario_key, m.scheduled_at) for m in claimed}
        done = _settle_marked(session, store, claimed)
        _count(by_id, {message_id: ("sent", None) for message_id in done}, now)
        claimed = [m for m in claimed if m.id not in done]
        settled: dict[int, Outcome] = {message_id: ("sent", None) for message_id in done}
        if not claimed:
            return settled
        marks = _BatchMarks(store, outbox.SentMarks(runtime.engine))
        with LeaseHeartbeat(runtime.engine, runtime.clock, [m.id or 0 for m in claimed], now + outbox.LEASE) as lease:
            try:
                outgoing, outcomes, settle = prepare_batch(runtime, session, claimed)
                if session.get_bind().dialect.name != "postgresql":  # PostgreSQL's readers block no writer
                    session.commit()  # no transaction of this session may be open while marks commit on their own connection
                outcomes.update(_send_all(runtime, session, outgoing, settle, marks, lease))
            finally:
                marks.close()
            if lease.held():  # else another worker may hold them by now: they are its to settle (marks tell it)
                outbox.settle_many(session, settle)
                marks.forget()
                _count(by_id, outcomes, runtime.clock.now())
    return {**settled, **outcomes}


def _count(by_id: dict[int, tuple[str, str, datetime]], outcomes: dict[int, Outcome], now: datetime) -> None:
    """The send metrics, once per message, after its end is settled: sent and failed per channel and
    scenario, and for each sent one the time from when it was due."""
    for message_id, (outcome, _) in outcomes.items():
        if outcome not in ("sent", "failed") or message_id not in by_id:
            continue
        channel, scenario, due = by_id[message_id]
        if outcome == "failed":
            metrics.MESSAGES_FAILED.labels(channel, scenario).inc()
            continue
        metrics.MESSAGES_SENT.labels(channel, scenario).inc()
        metrics.DELIVERY_LATENCY.labels(channel).observe(max(0.0, (as_utc(now) - as_utc(due)).total_seconds()))


def _settle_marked(session: Session, store: AcceptedMarks | None, claimed: list[Message]) -> dict[int, Mark]:
    """The claimed messages a channel already accepted (their worker died before settling): settled
    as sent now, never sent again."""
    retried = [m.id or 0 for m in claimed if m.attempts > 1]  # a first claim: never sent, so never marked
    if store is None or not retried:
        return {}
    done = store.accepted(retried)
    if done:
        outbox.settle_many(session, [_sent_row(message_id, subject, at) for message_id, (at, subject) in done.items()])
        store.forget(done)
        log.info("okaeri.outbox.settled-from-marks", extra={"messages": len(done)})
    return done


def _sent_row(message_id: int, subject: str, at: datetime) -> dict[str, Any]:
    # bodies are not kept (nothing read them): subject, context and decision remain
    return {"id": message_id, "status": MessageStatus.sent, "sent_at": at, "last_error": "", "subject": subject[:500]}


class _BatchMarks:
    """A batch's marks: in the runtime's cheap store, the rows settled in bulk afterwards; in the
    database row itself when there is none, or when the store fails (a Redis restart).

    A mark is sent the moment its mail is accepted and confirmed (`confirm`) before anything of
    the next mail is transferred, so its round trip overlaps the next mail's preparation and
    envelope; at most one mail per thread is ever accepted without a durable mark, the one whose
    mark is on its way, and none once the next mail's body goes out."""

    def __init__(self, store: AcceptedMarks | None, database: outbox.SentMarks) -> None:
        self.store, self.database = store, database
        self.stored: list[int] = []
        self._pending: tuple[int, str, datetime, list[dict[str, Any]], PendingMark] | None = None

    def record(self, message_id: int, subject: str, at: datetime, settle: list[dict[str, Any]]) -> None:
        """Start marking an accepted mail (confirm() makes it durable)."""
        self.confirm()
        if self.store is not None:
            try:
                self._pending = (message_id, subject, at, settle, self.store.send(message_id, subject, at))
                return
            except MarkUnavailable:
                log.warning("okaeri.outbox.mark-store-unavailable", extra={"message_id": message_id})
        self.database.record(message_id, subject, at)

    def confirm(self) -> None:
        """The mark under way is durable once this returns (in the database if the store failed)."""
        pending, self._pending = self._pending, None
        if pending is None:
            return
        message_id, subject, at, settle, reply = pending
        try:
            reply.wait()
        except MarkUnavailable:
            log.warning("okaeri.outbox.mark-store-unavailable", extra={"message_id": message_id})
            self.database.record(message_id, subject, at)
            return
        self.stored.append(message_id)
        settle.append(_sent_row(message_id, subject, at))

    def forget(self) -> None:
        """The batch is settled: its marks are no longer needed."""
        if self.store is not None and self.stored:
            self.store.forget(self.stored)

    def close(self) -> None:
        try:
            self.confirm()
        finally:
            self.database.close()


def _send_all(runtime: Runtime, session: Session, outgoing: list[tuple[Message, OutgoingMessage]],
              settle: list[dict[str, Any]], marks: _BatchMarks, lease: LeaseHeartbeat) -> dict[int, Outcome]:
    # No lease is released before the settle: a row whose lease ran out could be claimed and sent
    # by another worker, then overwritten by this batch's settle.
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
    return outcomes


def _send(runtime: Runtime, session: Session, message: Message, mail: OutgoingMessage,
          settle: list[dict[str, Any]], marks: _BatchMarks) -> Outcome:
    """Send one message; accepted ones are marked at once, other outcomes go to `settle`.
    Raises TemporaryFailure when the relay is down (see `_send_all`)."""
    channel = runtime.channels[message.channel]  # the consent gate cancelled messages of unknown channels
    try:
        channel.send_after(mail, marks.confirm)  # the last mail's mark is durable before this one goes out
    except TemporaryFailure as exc:
        if exc.relay_down:
            raise
        return _retry(runtime, message, str(exc), settle, exc.retry_at)
    except PermanentFailure as exc:
        settle.append({"id": message.id, "status": MessageStatus.failed, "last_error": str(exc)[:1000]})
        if exc.bad_address:
            suppress(session, message.shop_id, message.channel, message.to_address, channel.suppression_reason,
                     runtime.clock.now(), source=f"{channel.name} permanent failure")
            session.commit()  # now: the marks' connection must not wait behind this write (SQLite)
        return "failed", None
    marks.record(message.id or 0, mail.subject, runtime.clock.now(), settle)  # confirmed before the next transfer
    log.info("okaeri.outbox.sent", extra={"shop_id": message.shop_id, "message_id": message.id})
    return "sent", None


_STORES: weakref.WeakKeyDictionary[Any, weakref.WeakKeyDictionary[Any, AcceptedMarks | None]] = weakref.WeakKeyDictionary()
_STORES_LOCK = threading.Lock()


def marks_for(runtime: Runtime) -> AcceptedMarks | None:
    """The runtime's cheap mark store (one per engine and broker), None for marks in the database."""
    with _STORES_LOCK:
        by_broker = _STORES.setdefault(runtime.engine, weakref.WeakKeyDictionary())
        if runtime.broker not in by_broker:
            by_broker[runtime.broker] = _open_store(runtime)
        return by_broker[runtime.broker]


def _open_store(runtime: Runtime) -> AcceptedMarks | None:
    client, namespace = getattr(runtime.broker, "client", None), getattr(runtime.broker, "namespace", None)
    if client is not None and namespace and hasattr(client, "mget"):  # Redis: shared by every worker
        return RedisMarks(client, namespace)
    url = runtime.engine.url
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return JournalMarks(f"{url.database}-accepted")
    return None  # PostgreSQL without Redis, RabbitMQ: the row itself is the mark


def settle_journaled(runtime: Runtime) -> int:
    """At the start of a process that is its database's one deliverer (the in-process queue): settle
    every row the journal says was accepted, then empty the journal; how many marks it held."""
    store = marks_for(runtime)
    if not isinstance(store, JournalMarks):
        return 0
    marks = store.everything()
    if marks:
        with runtime.sessions() as session:
            outbox.settle_many(session, [_sent_row(i, subject, at) for i, (at, subject) in marks.items()])
    store.truncate()
    return len(marks)


def _retry(runtime: Runtime, message: Message, error: str, settle: list[dict[str, Any]],
           at: datetime | None = None) -> Outcome:
    """Back to pending with backoff (or at `at`, when the channel says when), or failed once its attempts are used up."""
    if message.attempts >= outbox.MAX_ATTEMPTS:
        settle.append({"id": message.id, "status": MessageStatus.failed, "last_error": f"gave up: {error}"[:1000]})
        return "failed", None
    retry_at = at or runtime.clock.now() + outbox.backoff(message.attempts)
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

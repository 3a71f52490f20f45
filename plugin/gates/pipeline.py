"""The gates in their one order, and how a tick and a delivery batch run them.

Every scenario message passes, in this order: consent and suppression, idempotency, the
frequency cap (priority decides who goes first), quiet hours, holdout, stock. Each gate is one
module with its SQL for the tick, its re-check at delivery and its decision tokens; this module
only composes them. A written row's `decision` holds the tokens of the gates that ruled on it
(read back in Japanese or English by `plugin.gates.decisions.explain`).
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, case, func, literal, null, or_, select
from sqlalchemy.sql import Subquery
from sqlmodel import col

from plugin.gates.base import Batch, Cancel, Defer, Gate, Tick, Verdict
from plugin.gates.consent import Consent
from plugin.gates.frequency_cap import FrequencyCap
from plugin.gates.holdout import Holdout
from plugin.gates.idempotency import Idempotency
from plugin.gates.quiet_hours import QuietHours
from plugin.gates.stock import Stock
from plugin.storage.models import Customer, Message, MessageStatus, trigger_key_sql
from plugin.storage.upsert import table_of

__all__ = ["PIPELINE", "gated_audience", "trigger_key_of", "ranked_audience", "outbox_columns", "prepare", "recheck", "passed",
           "content"]

PIPELINE: tuple[Gate, ...] = (Consent(), Idempotency(), FrequencyCap(), QuietHours(), Holdout(), Stock())


def gated_audience(tick: Tick, audience: Subquery, *extra: ColumnElement[bool]) -> Select[Any]:
    """A preset's audience joined to the shop's customers, filtered by every gate's conditions,
    with the channel's address as `to_address` and the inputs later gates read."""
    conditions = [c for gate in PIPELINE for c in gate.where(tick, audience)]
    inputs = {name: column for gate in PIPELINE for name, column in gate.inputs(tick, audience).items()}
    trigger_key = trigger_key_of(audience)
    return (select(*audience.c, trigger_key.label("trigger_key"), tick.channel.address().label("to_address"),
                   *(column.label(name) for name, column in inputs.items()))
            .join(Customer, and_(col(Customer.id) == audience.c.customer_id, col(Customer.shop_id) == tick.shop.id))
            .where(*conditions, *extra)
            .order_by(audience.c.customer_id, trigger_key))


def trigger_key_of(candidates: Subquery) -> ColumnElement[str]:
    """The identity of each candidate's trigger (`Trigger.key`), from the audience's typed columns."""
    return trigger_key_sql(candidates.c.trigger_kind, candidates.c.trigger_ref, candidates.c.trigger_step)


def ranked_audience(gated: Subquery) -> Subquery:
    """The gated audience with `nth`: each customer's candidates numbered in trigger order (the
    cap lets the first through)."""
    nth = func.row_number().over(partition_by=gated.c.customer_id, order_by=gated.c.trigger_key)
    return select(gated, nth.label("nth")).subquery()


def outbox_columns(tick: Tick, ranked: Subquery,
                   handoff_horizon: timedelta) -> tuple[dict[str, ColumnElement[Any]], datetime]:
    """`scheduled_at`, `status`, `decision` and `enqueued_at` of each written row, from every
    gate's deferrals (the first that applies decides when) and holds (who is never sent); and
    when the rows no gate deferred are due (they are handed over now if that is soon)."""
    when_type = table_of(Message).c.scheduled_at.type
    deferrals = [d for gate in PIPELINE if (d := gate.defer(tick, ranked)) is not None]
    holds = [h for gate in PIPELINE if (h := gate.hold(tick, ranked)) is not None]
    branches: list[tuple[ColumnElement[bool], ColumnElement[Any]]] = []
    verdicts: list[tuple[ColumnElement[bool], str]] = []
    passed_tokens: list[str] = []
    landing: datetime = tick.now
    for deferral in deferrals:
        if deferral.branches:
            branches += deferral.branches
            verdicts.append((or_(*(when for when, _ in deferral.branches)),
                             ";".join([*passed_tokens, deferral.deferred])))
        if deferral.otherwise is not None:  # every row not deferred before waits here
            landing = deferral.otherwise
            passed_tokens.append(deferral.deferred)
            break
        passed_tokens.append(deferral.ok)
    deferred = [when for when, _ in branches]
    decision: ColumnElement[Any] = case(*verdicts, else_=literal(";".join(passed_tokens))) if verdicts \
        else literal(";".join(passed_tokens))
    for hold in holds:  # tokens in gate order; the first hold that applies sets the status
        decision = decision + case((hold.when, literal(f";{hold.held}")), else_=literal(f";{hold.released}"))
    pending = literal(MessageStatus.pending.value)
    status = case(*((hold.when, literal(hold.status)) for hold in holds), else_=pending) if holds else pending
    held = [hold.when for hold in holds]
    handed_over = literal(tick.now if landing - tick.now <= handoff_horizon else None, when_type)
    return {
        "scheduled_at": case(*branches, else_=literal(landing, when_type)) if branches else literal(landing, when_type),
        "status": status,
        "decision": decision,
        "enqueued_at": case((or_(*deferred, *held), null()), else_=handed_over) if deferred or held else handed_over,
    }, landing


def prepare(batch: Batch) -> None:
    """Let every gate load what its re-checks need for this batch."""
    for gate in PIPELINE:
        gate.prepare(batch)


def recheck(batch: Batch, message: Message) -> Verdict | None:
    """Cancel (the first gate that refuses) or Defer (the latest time any gate asks, moved to a
    minute every gate allows), or None: the message may go now."""
    defer_to: datetime | None = None
    for gate in PIPELINE:
        verdict = gate.recheck(batch, message)
        if isinstance(verdict, Cancel):
            return verdict
        if isinstance(verdict, Defer):
            defer_to = verdict.at if defer_to is None else max(defer_to, verdict.at)
    if defer_to is None:
        return None
    for gate in PIPELINE:
        defer_to = gate.land(batch, message.shop_id, defer_to)
    return Defer(defer_to)


def passed(batch: Batch, message: Message) -> None:
    """A message passed every re-check and will be sent in this batch."""
    for gate in PIPELINE:
        gate.passed(batch, message)


def content(message: Message, context: dict[str, Any], needs_items: bool) -> Cancel | None:
    """After the scenario loaded the message's content: the first gate that finds it unusable."""
    for gate in PIPELINE:
        if (verdict := gate.content(message, context, needs_items)) is not None:
            return verdict
    return None



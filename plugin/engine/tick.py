"""The scenario engine: for one shop, run each enabled preset in priority order through the
gates and write the outbox in set-based SQL. Rendering happens at delivery, with stock as it is then."""
from __future__ import annotations

import hashlib
import logging
import os
import socket
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import BigInteger, case, cast, func, literal, null, or_, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from plugin.gates import decisions
from plugin.gates.audience import CAP_WINDOW, Partition, gated_audience, next_allowed
from plugin.jobs.actors import HANDOFF_HORIZON
from plugin.storage.leases import acquire_lease, release_lease
from plugin.storage.models import Customer, InstallState, Message, MessageStatus, ScenarioRun, ScenarioSetting, Shop
from plugin.storage.models.messages import IDEMPOTENCY_KEY
from plugin.storage.outbox import high_water
from plugin.storage.upsert import insert_ignore
from scenarios import Scenario, by_priority
from scenarios.sql import plus_day

if TYPE_CHECKING:
    from plugin.runtime import Runtime

__all__ = ["run_shop_tick", "write_scenario", "Step"]

log = logging.getLogger("okaeri.engine")
TICK_LEASE = timedelta(minutes=10)
MIN_SHARE = 20_000  # customers per range before a tick is split: smaller shops gain nothing from a second connection


@dataclass(frozen=True)
class Step:
    """One enabled preset of a tick: its setting and whether this is its period's pass."""

    scenario: Scenario
    setting: ScenarioSetting
    period: str | None
    periodic: bool


def run_shop_tick(runtime: Runtime, shop_id: int, partitions: int | None = None) -> list[tuple[int, datetime]]:
    """All enabled presets of one shop; returns (message id, due time) of new pending messages.

    Two overlapping ticks of one shop are serialised by a lease, so the frequency cap holds.
    On PostgreSQL the shop's customers are split into `partitions` disjoint sets (by id), each
    run through every preset in priority order on its own connection at the same time: the cap
    and every other gate look at one customer's rows only, so the split changes no decision.
    """
    holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    lease = f"tick:{shop_id}"
    if not acquire_lease(runtime, lease, holder, TICK_LEASE):
        log.info("okaeri.engine.tick-busy", extra={"shop_id": shop_id})
        return []
    try:
        now = runtime.clock.now()
        with runtime.sessions() as session:
            shop = session.get(Shop, shop_id)
            if shop is None or shop.state != InstallState.active:
                return []
            steps = _plan(session, shop, now)
        if partitions is None:
            partitions, min_share = (runtime.settings.tick_partitions, MIN_SHARE) \
                if runtime.engine.dialect.name == "postgresql" else (1, 1)
        else:
            min_share = 1  # asked for explicitly (tests): split whatever the shop's size
        written = _run_partitions(runtime, shop, steps, now, partitions, min_share)
        with runtime.sessions() as session:  # a period counts as done once every partition wrote it
            done = [{"shop_id": shop.id, "scenario_key": s.scenario.key, "period": s.period, "finished_at": now}
                    for s in steps if s.periodic]
            insert_ignore(session, ScenarioRun.__table__, done, ["shop_id", "scenario_key", "period"])  # type: ignore[arg-type]
            session.commit()
        return written
    finally:
        release_lease(runtime, lease, holder)


def _plan(session: Session, shop: Shop, now: datetime) -> list[Step]:
    enabled = {s.scenario_key: s for s in session.execute(select(ScenarioSetting).where(
        ScenarioSetting.shop_id == shop.id, ScenarioSetting.enabled.is_(True))).scalars()}  # type: ignore[attr-defined]
    done = set(session.execute(select(ScenarioRun.scenario_key, ScenarioRun.period).where(
        ScenarioRun.shop_id == shop.id)).tuples())
    steps = []
    for scenario in by_priority():
        if scenario.key in enabled:
            period = scenario.period(now, shop.timezone)
            steps.append(Step(scenario, enabled[scenario.key], period,
                              period is not None and (scenario.key, period) not in done))
    return steps


def _run_partitions(runtime: Runtime, shop: Shop, steps: list[Step], now: datetime,
                    partitions: int, min_share: int) -> list[tuple[int, datetime]]:
    """Every step for each partition of the customers: concurrently on PostgreSQL, else in turn."""
    def one(share: Partition) -> list[tuple[int, datetime]]:
        written: list[tuple[int, datetime]] = []
        with runtime.sessions() as session:
            for step in steps:
                written += write_scenario(session, shop, step, now, share)
        return written

    if partitions <= 1:
        return one(Partition())
    with runtime.sessions() as session:
        shares = customer_ranges(session, shop.id or 0, partitions, min_share)
    if len(shares) == 1:
        return one(shares[0])
    if runtime.engine.dialect.name != "postgresql":  # SQLite has one writer at a time
        return [row for share in shares for row in one(share)]
    with ThreadPoolExecutor(max_workers=len(shares), thread_name_prefix="okaeri-tick") as pool:
        futures = [pool.submit(one, share) for share in shares]
        return [row for future in futures for row in future.result()]


def customer_ranges(session: Session, shop_id: int, count: int, min_share: int = 1) -> list[Partition]:
    """Up to `count` id ranges of at least `min_share` customers, about as many in each, covering
    every id (the first and last are open, so a customer added meanwhile still falls in one)."""
    total = session.execute(select(func.count()).where(Customer.shop_id == shop_id)).scalar_one()
    count = max(1, min(count, total // max(min_share, 1)))
    bounds: list[int | None] = [None]
    for k in range(1, count):
        bound = session.execute(select(Customer.id).where(Customer.shop_id == shop_id).order_by(Customer.id)
                                .offset(total * k // count).limit(1)).scalar()
        if bound is not None and (bounds[-1] is None or bound > bounds[-1]):
            bounds.append(bound)
    bounds.append(None)
    return [Partition(low, high) for low, high in zip(bounds, bounds[1:], strict=False)]


def write_scenario(session: Session, shop: Shop, step: Step, now: datetime,
                   partition: Partition | None = None) -> list[tuple[int, datetime]]:
    """Select, gate and write one preset's messages in one INSERT … SELECT (no loop over customers).

    Every gate's verdict is computed in SQL and stored in `decision`; returns the pending
    messages due within the hand-off horizon, for the broker. `partition` limits the pass to
    one disjoint share of the shop's customers.
    """
    started = time.perf_counter()
    scenario, setting = step.scenario, step.setting
    partition = partition or Partition()
    delay = timedelta(minutes=setting.delay_minutes) if setting.delay_minutes is not None else scenario.default_delay
    audience = scenario.audience(shop, now, delay, periodic=step.periodic).subquery()
    gated = gated_audience(shop, scenario.key, audience, now, one_per_customer=step.periodic and scenario.one_per_period,
                           partition=partition).subquery()
    ranked = select(gated, func.row_number().over(partition_by=gated.c.customer_id, order_by=gated.c.trigger_key)
                    .label("nth")).subquery()
    before = high_water(session)
    if session.get_bind().dialect.name == "postgresql":
        # The cap lookup must go through its index. With statistics saying "messages is empty"
        # (a new install, or right after a big write) PostgreSQL picks a sequential scan for it,
        # which then re-reads the rows this very INSERT is adding: quadratic (26 s instead of 2 s
        # for 40k carts at 1M customers). JIT compilation of these large statements cost more
        # than it saved (1M-customer first tick: 37–38 s without, 43–47 s with). This transaction only.
        session.execute(text("SET LOCAL enable_seqscan = off"))
        session.execute(text("SET LOCAL jit = off"))
    session.execute(_insert_messages(session, shop, scenario, setting, ranked, now))
    session.commit()
    # Rows handed over now are exactly those stamped enqueued_at = now, all due at the first
    # allowed minute; new rows sit above `before` on the primary key (other partitions' rows too).
    due_at = next_allowed(now, shop.timezone)
    due = session.execute(select(Message.id).where(
        Message.id > before, Message.shop_id == shop.id, Message.scenario_key == scenario.key,  # type: ignore[operator]
        Message.enqueued_at == now, Message.status == MessageStatus.pending,
        *partition.where(Message.customer_id))).scalars().all()
    log.info("okaeri.engine.written", extra={"shop_id": shop.id, "scenario": scenario.key, "due": len(due),
                                             "seconds": round(time.perf_counter() - started, 3)})
    return [(i, due_at) for i in due]


def _insert_messages(session: Session, shop: Shop, scenario: Scenario, setting: ScenarioSetting, ranked: Any,
                     now: datetime) -> Any:
    """INSERT … SELECT … ON CONFLICT DO NOTHING: the unique (shop, customer, scenario, trigger) settles racing ticks."""
    at_now = next_allowed(now, shop.timezone)
    when_type = Message.__table__.c.scheduled_at.type  # type: ignore[attr-defined]
    blocked, repeat = ranked.c.blocking_at.is_not(None), ranked.c.nth > 1
    scheduled = case((blocked, plus_day(ranked.c.blocking_at)), (repeat, literal(now + CAP_WINDOW, when_type)),
                     else_=literal(at_now, when_type))
    control = _holdout_bucket(shop, scenario, ranked.c.customer_id) < setting.holdout_percent
    quiet = decisions.QUIET_OK if at_now == now else decisions.quiet_deferred(at_now)
    decision = (case((or_(blocked, repeat), literal(decisions.CAP_DEFERRED)), else_=literal(f"{decisions.CAP_OK};{quiet}"))
                + case((control, literal(f";{decisions.control(setting.holdout_percent)}")),
                       else_=literal(f";{decisions.TREATMENT}")))
    columns = {
        "shop_id": literal(shop.id), "customer_id": ranked.c.customer_id, "scenario_key": literal(scenario.key),
        "trigger_key": ranked.c.trigger_key, "trigger_kind": ranked.c.trigger_kind, "trigger_ref": ranked.c.trigger_ref,
        "trigger_step": ranked.c.trigger_step, "channel": literal("email"),
        "to_address": ranked.c.email, "subject": literal(""),
        "status": case((control, literal(MessageStatus.control.value)), else_=literal(MessageStatus.pending.value)),
        "scheduled_at": scheduled, "attempts": literal(0), "last_error": literal(""),
        "created_at": literal(now, when_type),
        "enqueued_at": case((or_(blocked, repeat, control), null()),
                            else_=literal(now if at_now - now <= HANDOFF_HORIZON else None, when_type)),
        "decision": decision,
    }
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    source = select(*columns.values()).where(ranked.c.customer_id.is_not(None))  # WHERE: SQLite's upsert parser needs one
    return dialect.insert(Message).from_select(list(columns), source).on_conflict_do_nothing(
        index_elements=list(IDEMPOTENCY_KEY))


def _holdout_bucket(shop: Shop, scenario: Scenario, customer_id: Any) -> Any:
    """0–99, fixed per (shop, scenario, customer): a multiplicative hash both databases compute alike."""
    salt = int.from_bytes(hashlib.sha256(f"{shop.id}:{scenario.key}".encode()).digest()[:3], "big")
    big = cast(customer_id, BigInteger)
    return (big * literal(2654435761, BigInteger) + literal(salt, BigInteger)) % literal(4294967296, BigInteger) % 100


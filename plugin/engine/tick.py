"""The scenario engine: for one shop, run each enabled preset in priority order through the
gates and write the outbox in set-based SQL. Rendering happens at delivery, with stock as it is then."""
from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, literal, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col

from plugin.channels.base import Channel
from plugin.channels.choice import preferred_channels, rule_of
from plugin.engine.followup import follow_up_steps
from plugin.engine.partition import Partition
from plugin.engine.reroute import reroute_idle
from plugin.gates.base import Tick
from plugin.gates.decisions import channel_chosen
from plugin.gates.pipeline import gated_audience, outbox_columns, ranked_audience
from plugin.gates.rules import ShopRules
from plugin.metrics import TICK_DURATION, size_bucket
from plugin.runtime import Runtime
from plugin.storage.leases import acquire_lease, release_lease
from plugin.storage.models import ChannelRule, Customer, InstallState, Message, MessageStatus, ScenarioRun, ScenarioSetting, Shop
from plugin.storage.models.messages import IDEMPOTENCY_KEY
from plugin.storage.outbox import HANDOFF_HORIZON
from plugin.storage.rollup import add_written, written_columns
from plugin.storage.upsert import insert_ignore, table_of
from scenarios import Scenario, by_priority

__all__ = ["run_shop_tick", "tick_written", "Written", "write_scenario", "Step"]

log = logging.getLogger("okaeri.engine")
TICK_LEASE = timedelta(minutes=10)
MIN_SHARE = 20_000  # customers per range before a tick is split: smaller shops gain nothing from a second connection


@dataclass(frozen=True)
class Step:
    """One enabled preset of a tick: its setting, the channel it sends on and whether this is
    its period's pass."""

    scenario: Scenario
    setting: ScenarioSetting
    period: str | None
    periodic: bool
    channel: Channel
    preferred: tuple[Channel, ...] = ()  # tried first, in order (the shop's channel rule), each bound to this scenario


@dataclass
class Written:
    """What a tick wrote: (message id, due time) of the rows handed over now, and how many rows in all."""

    due: list[tuple[int, datetime]]
    rows: int = 0

    def __iadd__(self, other: Written) -> Written:
        self.due += other.due
        self.rows += other.rows
        return self


def run_shop_tick(runtime: Runtime, shop_id: int, partitions: int | None = None) -> list[tuple[int, datetime]]:
    """All enabled presets of one shop; returns (message id, due time) of new pending messages."""
    return tick_written(runtime, shop_id, partitions).due


def tick_written(runtime: Runtime, shop_id: int, partitions: int | None = None) -> Written:
    """All enabled presets of one shop: what they wrote (`Written`).

    Two overlapping ticks of one shop are serialised by a lease, so the frequency cap holds.
    On PostgreSQL the shop's customers are split into `partitions` disjoint sets (by id), each
    run through every preset in priority order on its own connection at the same time: the cap
    and every other gate look at one customer's rows only, so the split changes no decision.
    """
    holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    lease = f"tick:{shop_id}"
    if not acquire_lease(runtime, lease, holder, TICK_LEASE):
        log.info("okaeri.engine.tick-busy", extra={"shop_id": shop_id})
        return Written([])
    released = False
    try:
        now = runtime.clock.now()
        if partitions is None:
            partitions, min_share = (runtime.settings.tick_partitions, MIN_SHARE) \
                if runtime.engine.dialect.name == "postgresql" else (1, 1)
        else:
            min_share = 1  # asked for explicitly (tests): split whatever the shop's size
        with runtime.sessions() as session:
            shop = _shop_read(session, shop_id, counted=partitions > 1)
            if shop is None or shop.state != InstallState.active:
                return Written([])
            for channel in runtime.channels.values():
                channel.refresh(session, shop_id, now)
            rule = rule_of(session, shop_id, runtime.channels)
            steps = _plan(session, shop, now, runtime.channels, rule)
            for step in steps:  # a preferred channel idle for now (an account paused): its waiting messages move
                for idle in (c for c in step.preferred if c.idle_reason):
                    reroute_idle(session, runtime.channels, shop.id or 0, step.scenario.key, idle.name, idle.idle_reason, now)
        started = time.perf_counter()
        written = _run_partitions(runtime, shop, steps, now, partitions, min_share)
        written += _write_follow_ups(runtime, shop, steps, rule, now)
        with runtime.sessions() as session:  # a period counts as done once every partition wrote it
            done = [{"shop_id": shop.id, "scenario_key": s.scenario.key, "period": s.period, "finished_at": now}
                    for s in steps if s.periodic]
            insert_ignore(session, table_of(ScenarioRun), done, ["shop_id", "scenario_key", "period"])
            release_lease(runtime, lease, holder, session)  # with the tick's last write: one commit for both
            session.commit()
            released = True
            TICK_DURATION.labels(size_bucket(_customer_count(session, shop.id or 0))).observe(
                time.perf_counter() - started)
        return written
    finally:
        if not released:
            release_lease(runtime, lease, holder)


def _shop_read(session: Session, shop_id: int, counted: bool) -> Shop | None:
    """The shop; `counted`: with its customers counted in the same statement, for the tick's
    split (`customer_ranges`) and the metric's label."""
    if not counted:
        return session.get(Shop, shop_id)
    customers = select(func.count()).where(col(Customer.shop_id) == shop_id).scalar_subquery()
    row = session.execute(select(Shop, customers).where(col(Shop.id) == shop_id)).one_or_none()
    if row is None:
        return None
    _SIZES[shop_id] = (time.monotonic(), int(row[1]))
    return row[0]


_SIZES: dict[int, tuple[float, int]] = {}  # shop id -> (when counted, customers): the metric's bucket
_SIZE_TTL = 3600.0


def _customer_count(session: Session, shop_id: int, fresh: bool = False, within: float = _SIZE_TTL) -> int:
    """The shop's customers, counted at most once an hour per process for the metric's label;
    `fresh`: counted now unless counted `within` seconds (the tick's split: by `_shop_read`)."""
    counted = _SIZES.get(shop_id)
    if counted is None or time.monotonic() - counted[0] > (within if fresh else _SIZE_TTL):
        total = session.execute(select(func.count()).where(col(Customer.shop_id) == shop_id)).scalar_one()
        counted = _SIZES[shop_id] = (time.monotonic(), int(total))
    return counted[1]


def _plan(session: Session, shop: Shop, now: datetime, channels: dict[str, Channel], rule: ChannelRule) -> list[Step]:
    enabled = {s.scenario_key: s for s in session.execute(select(ScenarioSetting).where(
        col(ScenarioSetting.shop_id) == shop.id, col(ScenarioSetting.enabled).is_(True))).scalars()}
    done = set(session.execute(select(col(ScenarioRun.scenario_key), col(ScenarioRun.period)).where(
        col(ScenarioRun.shop_id) == shop.id)).tuples())
    steps = []
    preferred_order = preferred_channels(rule, channels)
    for scenario in by_priority():
        setting = enabled.get(scenario.key)
        if setting is None:
            continue
        channel = channels.get(setting.channel)
        if channel is None:  # a channel this process does not provide: nothing can be sent on it
            log.warning("okaeri.engine.unknown-channel", extra={"shop_id": shop.id, "channel": setting.channel})
            continue
        bound = channel.bind(session, shop.id or 0, scenario.key)
        if bound is None:
            continue
        preferred = tuple(b for c in preferred_order if c.name != channel.name
                          and (b := c.bind(session, shop.id or 0, scenario.key)) is not None)
        period = scenario.period(now, shop.timezone)
        steps.append(Step(scenario, setting, period, period is not None and (scenario.key, period) not in done,
                          bound, preferred))
    return steps


def _run_partitions(runtime: Runtime, shop: Shop, steps: list[Step], now: datetime,
                    partitions: int, min_share: int) -> Written:
    """Every step for each partition of the customers: concurrently on PostgreSQL, else in turn."""
    def one(share: Partition) -> Written:
        written = Written([])
        with runtime.sessions() as session:
            for step in steps:
                written += write_scenario(session, shop, step, now, share)
        return written

    if partitions <= 1:
        return one(Partition())
    with runtime.sessions() as session:
        shares = customer_ranges(session, shop.id or 0, partitions, min_share, counted_within=60.0)  # by _shop_read
    if len(shares) == 1:
        return one(shares[0])
    if runtime.engine.dialect.name != "postgresql":  # SQLite has one writer at a time
        results = [one(share) for share in shares]
    else:
        with ThreadPoolExecutor(max_workers=len(shares), thread_name_prefix="okaeri-tick") as pool:
            results = [future.result() for future in [pool.submit(one, share) for share in shares]]
    written = Written([])
    for result in results:
        written += result
    return written


def customer_ranges(session: Session, shop_id: int, count: int, min_share: int = 1,
                    counted_within: float = 0.0) -> list[Partition]:
    """Up to `count` id ranges of at least `min_share` customers, about as many in each, covering
    every id (the first and last are open, so a customer added meanwhile still falls in one);
    the customers are counted now unless this process counted them `counted_within` seconds."""
    total = _customer_count(session, shop_id, fresh=True, within=counted_within)
    count = max(1, min(count, total // max(min_share, 1)))
    bounds: list[int | None] = [None]
    for k in range(1, count):
        bound = session.execute(select(col(Customer.id)).where(col(Customer.shop_id) == shop_id).order_by(col(Customer.id))
                                .offset(total * k // count).limit(1)).scalar()
        if bound is not None and (bounds[-1] is None or bound > bounds[-1]):
            bounds.append(bound)
    bounds.append(None)
    return [Partition(low, high) for low, high in zip(bounds, bounds[1:], strict=False)]


def write_scenario(session: Session, shop: Shop, step: Step, now: datetime,
                   partition: Partition | None = None) -> Written:
    """Select, gate and write one preset's messages in one INSERT … SELECT (no loop over customers).

    Every gate's verdict is computed in SQL and stored in `decision`; returns the pending
    messages due within the hand-off horizon, for the broker (and how many rows it wrote).
    `partition` limits the pass to one disjoint share of the shop's customers.
    """
    written = Written([])
    for channel, chosen in _channel_passes(step):  # the first channel that reaches a customer writes their row
        written += _write_pass(session, shop, step, channel, chosen, now, partition or Partition())
    return written


def _channel_passes(step: Step) -> list[tuple[Channel, Any]]:
    """(channel, how the decision record says it was chosen) per pass: the preferred channels
    that reach anyone now, then the scenario's own, which says why the first preferred one did not."""
    passes: list[tuple[Channel, Any]] = [(c, literal(channel_chosen(c.name))) for c in step.preferred if not c.idle_reason]
    if not step.preferred:
        return [*passes, (step.channel, None)]
    first = step.preferred[0]
    return [*passes, (step.channel, lambda customer_id: literal(f"{channel_chosen(step.channel.name)}@{first.name}:")
                      + (literal(first.idle_reason) if first.idle_reason
                         else first.unreachable(customer_id) if first.unreachable(customer_id) is not None
                         else literal("unreached")))]


def _write_pass(session: Session, shop: Shop, step: Step, channel: Channel, chosen: Any, now: datetime,
                partition: Partition) -> Written:
    started = time.perf_counter()
    scenario, setting = step.scenario, step.setting
    delay = timedelta(minutes=setting.delay_minutes) if setting.delay_minutes is not None else scenario.default_delay
    audience = scenario.audience(shop, now, delay, periodic=step.periodic).subquery()
    tick = Tick(shop=shop, scenario_key=scenario.key, channel=channel, rules=ShopRules.of(shop), now=now,
                holdout_percent=setting.holdout_percent, one_per_customer=step.periodic and scenario.one_per_period)
    ranked = ranked_audience(gated_audience(tick, audience, *partition.where(audience.c.customer_id)).subquery())
    if session.get_bind().dialect.name == "postgresql":
        # The cap lookup must go through its index. With statistics saying "messages is empty"
        # (a new install, or right after a big write) PostgreSQL picks a sequential scan for it,
        # which then re-reads the rows this very INSERT is adding: quadratic (26 s instead of 2 s
        # for 40k carts at 1M customers). JIT compilation of these large statements cost more
        # than it saved (1M-customer first tick: 37–38 s without, 43–47 s with). This transaction
        # only (set_config(…, true) is SET LOCAL; one statement for both).
        session.execute(select(func.set_config("enable_seqscan", "off", True), func.set_config("jit", "off", True)))
    insert, due_at = _insert_messages(session, tick, ranked, chosen)
    written = _write_rows(session, shop, scenario.key, insert, due_at, now)
    log.info("okaeri.engine.written", extra={"shop_id": shop.id, "scenario": scenario.key, "due": len(written.due),
                                             "rows": written.rows, "seconds": round(time.perf_counter() - started, 3)})
    return written


def _write_rows(session: Session, shop: Shop, key: str, insert: Any, due_at: datetime, now: datetime) -> Written:
    """Run a pass's INSERT, count what it wrote for the rollup, commit.

    The INSERT returns its own rows (RETURNING) with what the rollup groups them by, so neither
    the outbox's highest id before it nor the new rows after it are looked up (both read the
    newest end of the outbox's primary key, which concurrent ticks are writing). Rows handed
    over now are exactly those stamped enqueued_at = now, all due at the first allowed minute."""
    rows = table_of(Message).c
    handed_over = and_(rows.status == MessageStatus.pending, rows.enqueued_at == now).label("due")
    groups: dict[Any, int] = {}
    written = Written([])
    for message_id, is_due, *group in session.connection().execute(insert.returning(rows.id, handed_over,
                                                                                    *written_columns(key))).all():
        written.rows += 1
        key_of = tuple(group)
        groups[key_of] = groups.get(key_of, 0) + 1
        if is_due:
            written.due.append((message_id, due_at))
    add_written(session, shop, key, now, groups)
    session.commit()
    return written


def _write_follow_ups(runtime: Runtime, shop: Shop, steps: list[Step], rule: ChannelRule, now: datetime) -> Written:
    """Unopened messages followed on a preferred channel (plugin.engine.followup), after the presets."""
    written = Written([])
    passes = follow_up_steps(shop, steps, rule, now)
    if not passes:
        return written
    with runtime.sessions() as session:
        for tick, ranked, token in passes:
            insert, due_at = _insert_messages(session, tick, ranked, token)
            written += _write_rows(session, shop, tick.scenario_key, insert, due_at, now)
    return written


def _insert_messages(session: Session, tick: Tick, ranked: Any, chosen: Any = None) -> tuple[Any, datetime]:
    """INSERT … SELECT … ON CONFLICT DO NOTHING (the unique (shop, customer, scenario, trigger)
    settles racing ticks), and when its rows that no gate deferred are due. `chosen`: the channel
    choice's token (SQL, or a function of the customer id column), first in the decision record."""
    gated, due_at = outbox_columns(tick, ranked, HANDOFF_HORIZON)
    if chosen is not None:
        token = chosen(ranked.c.customer_id) if callable(chosen) else chosen
        gated["decision"] = token + literal(";") + gated["decision"]
    when_type = table_of(Message).c.scheduled_at.type
    columns = {
        "shop_id": literal(tick.shop.id), "customer_id": ranked.c.customer_id, "scenario_key": literal(tick.scenario_key),
        "trigger_key": ranked.c.trigger_key, "trigger_kind": ranked.c.trigger_kind, "trigger_ref": ranked.c.trigger_ref,
        "trigger_step": ranked.c.trigger_step, "channel": literal(tick.channel.name),
        "to_address": ranked.c.to_address, "subject": literal(""),
        "status": gated["status"], "scheduled_at": gated["scheduled_at"], "attempts": literal(0), "last_error": literal(""),
        "created_at": literal(tick.now, when_type), "enqueued_at": gated["enqueued_at"],
        "decision": gated["decision"],
    }
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    source = select(*columns.values()).where(ranked.c.customer_id.is_not(None))  # WHERE: SQLite's upsert parser needs one
    # the Core table: the ORM entity's insert went through the ORM's bulk-insert path for nothing
    return dialect.insert(table_of(Message)).from_select(list(columns), source).on_conflict_do_nothing(
        index_elements=list(IDEMPOTENCY_KEY)), due_at

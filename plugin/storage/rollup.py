"""Keeping the dashboard's rollups (`plugin.storage.models.rollup`) up to date where things happen.

Each figure is keyed on the shop-local day the dashboard's SQL aggregates gave it: sent, opened,
clicked, conversions and revenue on the day the message was sent (an open or an order that comes
later counts for the message that earned it); held back on the day the row was written; the
control arm on the day a held-out row was due. Every writer adds what it changed, in the same
transaction as the change, aggregated: one upsert per batch, never one per message.

- delivery: `settling(session, rows)`, the first line of `plugin.storage.outbox.settle_many`: the
  rows it ends that had not ended before (a re-settle from the journal after a crash counts
  nothing), and the messages the session claimed that were marked sent in their own row.
- the tick: `add_written` with the rows its INSERT returned (`written_columns`; the held-out rows).
- cancelling pending rows in bulk: `count_cancelling` before the UPDATE.
- tracking: `count_event` before an open or click is stored (the first per message counts).
- attribution: `count_conversions` with the conversions just inserted.

Rows still waiting (pending, sending) count under why they wait (capped, quiet hours, deferred,
waiting), written when the tick writes them and moved when they end or are deferred again.
"""
from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, String, TextClause, bindparam, case, exists, func, literal, select, text
from sqlmodel import Session, col

from plugin.clock import as_utc
from plugin.storage.models import Conversion, Message, MessageEvent, MessageStatus, RollupDay, RollupHeld, Shop
from plugin.storage.upsert import table_of

__all__ = ["DAY_COLUMNS", "TEMPLATE_PREFIX", "step_of", "step_sql", "ended_reason", "local_date", "add_days", "add_held",
           "settling", "settling_counts", "upserts_as_ctes", "waiting_reason", "waiting_class", "written_columns",
           "add_written",
           "count_cancelling", "count_event", "count_conversions"]

DAY_COLUMNS = ("sent", "opened", "clicked", "conversions", "revenue", "treated_bought", "control", "control_bought")
TEMPLATE_PREFIX = "template failed: "  # plugin.channels.copy_errors.RECORD_PREFIX (channels sit above storage)
_ENDED = (MessageStatus.sent, MessageStatus.cancelled, MessageStatus.failed, MessageStatus.control)
_SETTLED = (MessageStatus.sent, MessageStatus.cancelled, MessageStatus.failed)
_CLAIMED = (MessageStatus.sending, MessageStatus.failed)  # in memory: as claimed, or failed at rendering

DayKey = tuple[int, str, str, date]  # shop, scenario, step, local day
HeldKey = tuple[int, str, date, str]  # shop, scenario, local day, reason


def step_of(key: str, trigger_step: str | None) -> str:
    """The step a message of preset `key` belongs to, as the scenario page lists them: post-purchase
    writes the step's name; a cart's second reminder is "<revision>:2"; a points notice "<day>:30" or
    ":7"; single-step presets have one step, "all"."""
    if key == "post_purchase":
        return trigger_step or "thanks"
    if key == "cart_recovery":
        return "second" if (trigger_step or "").endswith(":2") else "first"
    if key == "point_expiry":
        return "d7" if (trigger_step or "").endswith(":7") else "d30"
    return "all"


def step_sql(key: str, column: Any = None) -> ColumnElement[str]:
    """`step_of` in SQL over the trigger_step column (for one preset)."""
    step = col(Message.trigger_step) if column is None else column
    if key == "post_purchase":
        return func.coalesce(step, literal("thanks", String))
    if key == "cart_recovery":
        return case((step.like("%:2"), literal("second", String)), else_=literal("first", String))
    if key == "point_expiry":
        return case((step.like("%:7"), literal("d7", String)), else_=literal("d30", String))
    return literal("all", String)


def ended_reason(status: str, last_error: str) -> str | None:
    """Why a row that ended unsent did (the dashboard's reasons), None for a sent or waiting row."""
    if status == MessageStatus.control:
        return "control"
    if status == MessageStatus.failed:
        return "failed"
    if status != MessageStatus.cancelled:
        return None
    if last_error.startswith("suppressed"):
        return "suppressed"
    if last_error.startswith("stock:"):
        return "out_of_stock"
    if last_error.startswith("exit condition"):
        return "exit"
    return "switched_off"


def local_date(moment: datetime, tz: str) -> date:
    return as_utc(moment).astimezone(ZoneInfo(tz)).date()


_ZONE_TTL = 60.0  # seconds a shop's zone is reused by the writers (a changed zone applies within a minute)
_zones: dict[int, tuple[str, float]] = {}


class _Zones:
    """Shop id → its zone: read once a minute per process, not once per batch."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def __call__(self, shop_id: int) -> str:
        known = _zones.get(shop_id)
        now = time.monotonic()
        if known is None or known[1] < now:
            tz = self.session.execute(select(col(Shop.timezone)).where(col(Shop.id) == shop_id)).scalar()
            known = _zones[shop_id] = (tz or "UTC", now + _ZONE_TTL)
        return known[0]


def _upsert_sql(table: str, key: Sequence[str], counters: Sequence[str]) -> TextClause:
    """INSERT … ON CONFLICT DO UPDATE adding the counters: the same text on SQLite and PostgreSQL,
    built once (the ORM's upsert construct was compiled anew on every call: 3 ms a batch)."""
    columns = [*key, *counters]
    return text(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(':' + c for c in columns)}) "
                f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET "
                + ", ".join(f"{c} = {table}.{c} + excluded.{c}" for c in counters))


_DAYS_UPSERT = _upsert_sql("rollup_days", ("shop_id", "scenario_key", "step", "day"), DAY_COLUMNS)
_HELD_UPSERT = _upsert_sql("rollup_held", ("shop_id", "scenario_key", "day", "reason"), ("n",))


def add_days(session: Session, counts: dict[DayKey, dict[str, int]]) -> None:
    """Add these counters to their days: one statement (its rows as parameter sets)."""
    rows = days_rows(counts)
    if rows:
        session.execute(_DAYS_UPSERT, rows)


def add_held(session: Session, counts: dict[HeldKey, int]) -> None:
    rows = held_rows(counts)
    if rows:
        session.execute(_HELD_UPSERT, rows)


def _bump(counts: dict[Any, dict[str, int]], key: Any, column: str, by: int = 1) -> None:
    cell = counts.setdefault(key, {})
    cell[column] = cell.get(column, 0) + by


def _ended(zones: _Zones, days: dict[DayKey, dict[str, int]], held: dict[HeldKey, int], shop_id: int, key: str,
           trigger_step: str | None, created_at: datetime, status: str, sent_at: datetime | None, last_error: str) -> None:
    """Count one row that reached an end (not control: the tick counts those when it writes them)."""
    tz = zones(shop_id)
    if status == MessageStatus.sent:
        if sent_at is not None:
            _bump(days, (shop_id, key, step_of(key, trigger_step), local_date(sent_at, tz)), "sent")
        return
    reason = ended_reason(status, last_error or "")
    if reason is None:
        return
    day = local_date(created_at, tz)
    held[(shop_id, key, day, reason)] = held.get((shop_id, key, day, reason), 0) + 1
    if status == MessageStatus.failed and (last_error or "").startswith(TEMPLATE_PREFIX):
        kind = (last_error or "").removeprefix(TEMPLATE_PREFIX).split(":", 1)[0][:30]
        held[(shop_id, key, day, f"tpl:{kind}")] = held.get((shop_id, key, day, f"tpl:{kind}"), 0) + 1


def waiting_reason(decision: str) -> str:
    """Why a pending (or sending) row has not gone yet, from its gates' tokens."""
    if "delivery=deferred" in decision:
        return "deferred"
    if "cap=deferred" in decision:
        return "capped"
    if "quiet=deferred" in decision:
        return "quiet_hours"
    return "waiting"


def waiting_class() -> ColumnElement[str]:
    """`waiting_reason` in SQL over the decision column."""
    decision = col(Message.decision)
    return case((decision.like("%delivery=deferred%"), literal("deferred", String)),
                (decision.like("%cap=deferred%"), literal("capped", String)),
                (decision.like("%quiet=deferred%"), literal("quiet_hours", String)), else_=literal("waiting", String))


def _held(held: dict[HeldKey, int], key: HeldKey, by: int = 1) -> None:
    held[key] = held.get(key, 0) + by


_M = Message.__table__  # type: ignore[attr-defined]
_SETTLING = (select(_M.c.id, _M.c.shop_id, _M.c.scenario_key, _M.c.trigger_step, _M.c.created_at, _M.c.status, _M.c.sent_at,
                    _M.c.last_error, _M.c.decision).where(_M.c.id.in_(bindparam("ids", expanding=True))))


def settling(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """The outbox's hook, first thing in `settle_many` (before its UPDATE, in its transaction): count
    the rows it is about to end (sent, cancelled, failed) that had not ended yet — a re-settle from
    the journal after a crash counts nothing — and move the rows it defers again to their new
    reason; then the messages this delivery session claimed that ended without passing here:
    marked sent in their row on the marks' own connection (no cheaper mark store) or failed at
    rendering. One upsert per table (`settling_counts` says what; on PostgreSQL `settle_many`
    writes them in its own UPDATE instead)."""
    days, held = settling_counts(session, rows)
    add_days(session, days)
    add_held(session, held)
    if not rows and (days or held):
        session.commit()  # settle_many has nothing to write: these counters are its batch's only write


def settling_counts(session: Session, rows: Sequence[dict[str, Any]]) -> tuple[dict[DayKey, dict[str, int]], dict[HeldKey, int]]:
    """What `settling` adds: (days, held) for the rows about to be settled and the session's claims.

    The claimed messages are those the claim loaded into this session (`claim_many`, the only
    Message entities delivery loads); a set in `session.info` keeps each counted once. What the
    claim loaded is all a batch's own rows need: a row loaded as `sending` had not ended (it is
    this session's claim), and a row failed at rendering is failed in memory as in its row. Only
    rows the session does not hold that way are read (one SELECT of their ids): a journal's
    re-settle, and claims that may have been marked sent in their row on another connection."""
    counted: set[int] = session.info.setdefault("rollup_counted", set())
    given = {r["id"]: r for r in rows}
    loaded = {obj.id: obj for obj in list(session.identity_map.values()) if isinstance(obj, Message) and obj.id is not None
              and obj.id not in counted and (obj.id in given or obj.status in _CLAIMED)}
    known: list[tuple[Any, ...]] = []
    unknown: list[int] = []
    for message_id in given:
        obj = loaded.get(message_id)
        if obj is not None and obj.status == MessageStatus.sending:  # as claimed: not ended
            known.append(_state(obj))
        else:
            unknown.append(message_id)
    for message_id, obj in loaded.items():
        if message_id in given:
            continue
        if obj.status == MessageStatus.failed:  # failed at rendering, committed as it is in memory
            known.append(_state(obj))
        else:
            unknown.append(message_id)  # marked sent in its row, maybe: only the row knows
    days: dict[DayKey, dict[str, int]] = {}
    held: dict[HeldKey, int] = {}
    if not known and not unknown:
        return days, held
    found = session.connection().execute(_SETTLING, {"ids": unknown}).all() if unknown else []  # Core: no ORM step
    zones = _Zones(session)
    for message_id, shop_id, key, trigger_step, created_at, status, sent_at, last_error, decision in [*known, *found]:
        if status in _ENDED and message_id in given:
            continue  # settled before (a journal outliving its settle): counted then
        if message_id in given:
            row = given[message_id]
            if row.get("status") not in _SETTLED:  # back to pending: a deferral may change why it waits
                day = local_date(created_at, zones(shop_id))
                before, after = waiting_reason(decision or ""), waiting_reason(row.get("decision", decision) or "")
                if before != after:
                    _held(held, (shop_id, key, day, before), -1)
                    _held(held, (shop_id, key, day, after))
                continue
            status, sent_at, last_error = row["status"], row.get("sent_at"), row.get("last_error", "")
        elif status not in _ENDED:
            continue  # still claimed, or back to pending
        counted.add(message_id)
        _held(held, (shop_id, key, local_date(created_at, zones(shop_id)), waiting_reason(decision or "")), -1)
        _ended(zones, days, held, shop_id, key, trigger_step, created_at, status, sent_at, last_error)
    return days, held


def _state(m: Message) -> tuple[Any, ...]:
    """A loaded message as a row of `_SETTLING`."""
    return (m.id, m.shop_id, m.scenario_key, m.trigger_step, m.created_at, m.status, m.sent_at, m.last_error, m.decision)


def days_rows(counts: dict[DayKey, dict[str, int]]) -> list[dict[str, Any]]:
    return [{"shop_id": k[0], "scenario_key": k[1], "step": k[2], "day": k[3], **{c: v.get(c, 0) for c in DAY_COLUMNS}}
            for k, v in counts.items() if any(v.values())]


def held_rows(counts: dict[HeldKey, int]) -> list[dict[str, Any]]:
    return [{"shop_id": k[0], "scenario_key": k[1], "day": k[2], "reason": k[3], "n": n} for k, n in counts.items() if n]


_DAY_KEY, _HELD_KEY = ("shop_id", "scenario_key", "step", "day"), ("shop_id", "scenario_key", "day", "reason")


def upserts_as_ctes(days: dict[DayKey, dict[str, int]], held: dict[HeldKey, int]) -> tuple[str, dict[str, list[Any]]]:
    """PostgreSQL: these counters as `WITH` data-modifying statements (INSERT … SELECT FROM unnest
    … ON CONFLICT adding), to lead another statement — `settle_many`'s UPDATE — so that a batch's
    settle and its rollup are one statement; ("", {}) when there is nothing to add. Parameters are
    prefixed rd_ / rh_, one array per column: the text depends only on which tables get rows."""
    day_rows, held_rows_ = days_rows(days), held_rows(held)
    params: dict[str, list[Any]] = {}
    for prefix, table_rows, columns in (("rd_", day_rows, (*_DAY_KEY, *DAY_COLUMNS)), ("rh_", held_rows_, (*_HELD_KEY, "n"))):
        if table_rows:
            params.update({prefix + c: [r[c] for r in table_rows] for c in columns})
    return _ctes(bool(day_rows), bool(held_rows_)), params


@lru_cache(maxsize=4)
def _ctes(days: bool, held: bool) -> str:
    from sqlalchemy.dialects import postgresql

    dialect = postgresql.dialect()
    parts = []
    for wanted, name, model, key, counters, prefix in (
            (days, "rollup_days", RollupDay, _DAY_KEY, DAY_COLUMNS, "rd_"), (held, "rollup_held", RollupHeld, _HELD_KEY, ("n",), "rh_")):
        if not wanted:
            continue
        table = table_of(model)
        columns = [*key, *counters]
        arrays = ", ".join(f"CAST(:{prefix}{c} AS {table.c[c].type.compile(dialect=dialect)}[])" for c in columns)
        parts.append(f"{prefix.rstrip('_')} AS (INSERT INTO {name} ({', '.join(columns)}) SELECT * FROM unnest({arrays}) "
                     f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET "
                     + ", ".join(f"{c} = {name}.{c} + excluded.{c}" for c in counters) + ")")
    return f"WITH {', '.join(parts)} " if parts else ""


def written_columns(key: str) -> tuple[Any, ...]:
    """What `add_written` groups a tick's new rows by: step, status, why waiting, when due (as SQL
    over the outbox's columns, for a SELECT or an INSERT's RETURNING)."""
    return (step_sql(key).label("step"), col(Message.status), waiting_class().label("reason"), col(Message.scheduled_at))


def add_written(session: Session, shop: Shop, key: str, now: datetime,
                groups: dict[tuple[str, str, str, datetime], int]) -> None:
    """Count a tick's new rows of one preset, given as {(step, status, why waiting, due): rows}
    (`written_columns`): those that wait, by why, and those held out, on the day written and, for
    the control arm, on the day due. On PostgreSQL both tables in one statement."""
    if not groups:
        return
    shop_id, written = shop.id or 0, local_date(now, shop.timezone)
    days: dict[DayKey, dict[str, int]] = {}
    held: dict[HeldKey, int] = {}
    for (step_name, state, why, due), n in groups.items():
        if state == MessageStatus.control:
            _bump(days, (shop_id, key, step_name, local_date(due, shop.timezone)), "control", n)
            _held(held, (shop_id, key, written, "control"), n)
        elif state in (MessageStatus.pending, MessageStatus.sending):
            _held(held, (shop_id, key, written, why), n)
    if session.get_bind().dialect.name == "postgresql":
        ctes, counters = upserts_as_ctes(days, held)
        if ctes:
            session.execute(text(f"{ctes}SELECT 1"), counters)
        return
    add_days(session, days)
    add_held(session, held)


def count_cancelling(session: Session, last_error: str, *where: Any) -> None:
    """Before an UPDATE that cancels the pending rows matching `where` with `last_error`: move them
    from why they waited to why they ended (grouped in SQL by shop, preset, when written and why
    waiting; a tick writes its rows at one time)."""
    reason = ended_reason(MessageStatus.cancelled, last_error) or "switched_off"
    zones, held = _Zones(session), {}  # type: ignore[var-annotated]
    why = waiting_class().label("why")
    for shop_id, key, created_at, waited, n in session.execute(
            select(col(Message.shop_id), col(Message.scenario_key), col(Message.created_at), why, func.count())
            .where(col(Message.status) == MessageStatus.pending, *where)
            .group_by(col(Message.shop_id), col(Message.scenario_key), col(Message.created_at), why)):
        day = local_date(created_at, zones(shop_id))
        _held(held, (shop_id, key, day, reason), n)
        _held(held, (shop_id, key, day, waited), -n)
    add_held(session, held)


def count_event(session: Session, message: Message, kind: str) -> None:
    """Before an open or click of `message` is stored: its first open-or-click makes it opened, its
    first click clicked (on the day it was sent)."""
    if kind not in ("open", "click") or message.status != MessageStatus.sent or message.sent_at is None:
        return

    def seen(*kinds: str) -> bool:
        return bool(session.execute(select(exists().where(
            col(MessageEvent.shop_id) == message.shop_id, col(MessageEvent.message_id) == message.id,
            col(MessageEvent.kind).in_(kinds)))).scalar())

    opened = not seen("open", "click")
    clicked = kind == "click" and (opened or not seen("click"))
    if opened or clicked:
        key = (message.shop_id, message.scenario_key, step_of(message.scenario_key, message.trigger_step),
               local_date(message.sent_at, _Zones(session)(message.shop_id)))
        add_days(session, {key: {"opened": int(opened), "clicked": int(clicked)}})


def count_conversions(session: Session, conversion_ids: Iterable[int]) -> None:
    """After conversions were inserted: each counts, with its revenue, on its message's sent day."""
    ids = list(conversion_ids)
    if not ids:
        return
    zones, days = _Zones(session), {}  # type: ignore[var-annotated]
    for revenue, shop_id, key, trigger_step, sent_at in session.execute(
            select(col(Conversion.revenue), col(Message.shop_id), col(Message.scenario_key), col(Message.trigger_step),
                   col(Message.sent_at))
            .join(Message, col(Message.id) == col(Conversion.message_id))
            .where(col(Conversion.id).in_(ids), col(Message.status) == MessageStatus.sent)):
        if sent_at is None:
            continue
        k = (shop_id, key, step_of(key, trigger_step), local_date(sent_at, zones(shop_id)))
        _bump(days, k, "conversions")
        _bump(days, k, "revenue", int(revenue or 0))
    add_days(session, days)

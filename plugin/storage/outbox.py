"""The outbox (written by the engine, once per idempotency key): claim with a lease, settle, sweep.

pending ──claim──▶ sending ──▶ sent       (marked the moment the channel accepts it, one by one)
   ▲                  │ ├─────▶ failed    (permanent, or attempts exhausted)
   └──retry/lease─────┘ └─────▶ cancelled (exit condition met, suppressed, shop gone)

A claim's lease is short (LEASE) and renewed every RENEW_EVERY while its worker lives, so what a
dead worker held is claimable again within LEASE of its death. Each accepted message is marked
before the next is sent — in a cheap store (`plugin.storage.marks`: a journal beside SQLite, Redis)
whose marks every claim checks, the row then settled in bulk with the rest of its batch; or, with
neither, in the row itself (`SentMarks`). A killed worker leaves at most the one message it was
transferring unmarked, to be sent again, with the same Message-ID.
"""
from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, Engine, TextClause, and_, bindparam, func, or_, select, text, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, col

from plugin.storage.db import inserted_since_vacuum, refresh_statistics
from plugin.storage.models import Message, MessageStatus
from plugin.storage.models.messages import status_is
from plugin.storage.rollup import add_days, add_held, settling, settling_counts, upserts_as_ctes
from plugin.storage.upsert import table_of

__all__ = ["claim_many", "settle_many", "renew_leases", "SentMarks", "due_for_enqueue", "handovers", "due_within_horizon",
           "high_water", "analyze_if_grown", "analyze_after", "LEASE", "RENEW_EVERY", "MAX_ATTEMPTS", "backoff", "ANALYZE_AFTER",
           "HANDOFF_HORIZON"]

log = logging.getLogger("okaeri.outbox")

LEASE = timedelta(seconds=10)  # what a dead worker held is claimable again this soon after its last renewal
RENEW_EVERY = timedelta(seconds=2)  # a living worker's heartbeat: its leases never get near their end
HANDOFF_HORIZON = timedelta(minutes=5)  # due sooner: to the broker, delayed until due; later: left to the sweeper
# A hand-off the broker still holds after this long is taken for lost. Not shorter: a legitimate
# backlog (100,000 queued mails drain in minutes) must not be handed over again and again. A dead
# worker's prefetched hand-offs come back sooner, through the broker (its heartbeat timeout).
STALE_ENQUEUE = timedelta(minutes=10)
MAX_ATTEMPTS = 8
ANALYZE_AFTER = 5_000  # rows a tick may add before the outbox's planner statistics are refreshed


def backoff(attempts: int) -> timedelta:
    """1, 2, 4 … minutes, capped at 4 hours."""
    return timedelta(minutes=min(2 ** max(attempts - 1, 0), 240))


def claim_many(session: Session, message_ids: Sequence[int], now: datetime) -> list[Message]:
    """Take the due ones among these messages (or those whose lease ran out) in one UPDATE."""
    due = and_(col(Message.status) == MessageStatus.pending, col(Message.scheduled_at) <= now)
    expired = and_(col(Message.status) == MessageStatus.sending, col(Message.lease_until) < now)
    claimed = list(session.execute(
        update(Message)
        .where(col(Message.id).in_(list(message_ids)), or_(due, expired))
        .values(status=MessageStatus.sending, lease_until=now + LEASE, attempts=col(Message.attempts) + 1)
        .returning(Message).execution_options(populate_existing=True, synchronize_session=False)
    ).scalars())
    session.commit()
    return sorted(claimed, key=lambda m: m.id or 0)


def renew_leases(connection: Connection, message_ids: Iterable[int], until: datetime) -> int:
    """Extend the leases of these claimed messages to `until` (committed); how many were still held."""
    ids = list(message_ids)
    if not ids:
        return 0
    result = connection.execute(
        update(Message).where(col(Message.id).in_(ids), col(Message.status) == MessageStatus.sending)
        .values(lease_until=until).execution_options(synchronize_session=False))
    connection.commit()
    return int(result.rowcount)


_MARK_SENT = (update(Message).where(col(Message.id) == bindparam("message_id"))
              .values(status=MessageStatus.sent, sent_at=bindparam("at"), subject=bindparam("mail_subject"),
                      last_error="", lease_until=None))


class SentMarks:
    """Marks each message the channel accepted as sent in its row (when there is no cheaper mark
    store, or it failed), committed before the next send, on a
    connection of its own (the batch's session may be mid-transaction; on SQLite it must not hold
    the write lock meanwhile). A lost database connection is replaced and the mark retried a few
    times; if the database stays away the error propagates and the batch stops sending."""

    TRIES = 3

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._connection: Connection | None = None

    def record(self, message_id: int, subject: str, at: datetime) -> None:
        """Durably record that `message_id` was accepted (bodies are not kept: subject only)."""
        params = {"message_id": message_id, "at": at, "mail_subject": subject[:500]}
        for attempt in range(self.TRIES):
            try:
                connection = self._connection = self._connection or self._connect()
                connection.execute(_MARK_SENT, params)
                connection.commit()
                return
            except DBAPIError:
                self.close()
                if attempt == self.TRIES - 1:
                    raise
                log.warning("okaeri.outbox.mark-retry", extra={"message_id": message_id})
                time.sleep(0.2 * (attempt + 1))

    def _connect(self) -> Connection:
        """On PostgreSQL the marks do not wait for their WAL to reach the disk (synchronous_commit
        off, for this connection while it marks): a killed worker cannot lose a committed mark, the
        threat they guard against; a crash of PostgreSQL itself could lose the last ~0.6 s of them
        (3 x wal_writer_delay), and those mails would go again. One flush per mail is what a
        committed mark would otherwise wait for."""
        connection = self.engine.connect()
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql("SET synchronous_commit TO off")
            connection.commit()
        return connection

    def close(self) -> None:
        if self._connection is not None:
            try:
                if self._connection.dialect.name == "postgresql" and not self._connection.invalidated:
                    self._connection.exec_driver_sql("RESET synchronous_commit")  # back to the pool as it came
                    self._connection.commit()
                self._connection.close()
            except DBAPIError:
                pass
            self._connection = None


def settle_many(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Bulk-settle claimed messages: each row has `id` plus the columns to set; the dashboard's
    rollup (plugin.storage.rollup) counts what they end in the same transaction.

    On PostgreSQL, rows that set the same columns (a batch's sent mails) go in one
    UPDATE … FROM unnest(…) rather than one UPDATE each, and the rollup's upserts lead the first
    of them as WITH clauses: a batch that sent everything settles in one statement. SQLite,
    in-process, takes them as an executemany, the rollup as its own upserts.
    """
    if session.get_bind().dialect.name != "postgresql":
        settling(session, rows)
        if rows:
            session.execute(update(Message), [{**r, "lease_until": None} for r in rows])
            session.commit()
        return
    days, held = settling_counts(session, rows)
    if not rows:
        if days or held:
            add_days(session, days)
            add_held(session, held)
            session.commit()  # the counters of claims that ended elsewhere are the batch's only write
        return
    ctes, counters = upserts_as_ctes(days, held)
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[tuple(sorted(row))].append(row)
    for keys, group in groups.items():
        nulls = tuple(k for k in keys if all(row[k] is None for row in group))  # an all-NULL array has no type
        names = ("id", *(k for k in keys if k not in {"id", "lease_until", *nulls}))
        session.execute(_unnest_update(names, nulls, ctes), {**counters, **{k: [row[k] for row in group] for k in names}})
        ctes, counters = "", {}  # with the first group only
    session.commit()


@lru_cache(maxsize=64)
def _unnest_update(names: tuple[str, ...], nulls: tuple[str, ...], ctes: str = "") -> TextClause:
    """`UPDATE messages … FROM unnest(:id, :status, …)`: one array per column, so the statement's
    text is the same for every batch that sets these columns — compiled and planned once (a VALUES
    list, one bound row per message, was compiled anew for each batch: 15% of a worker's CPU).
    `ctes`: the rollup's upserts (`upserts_as_ctes`) leading it, one of a few texts."""
    table = table_of(Message)
    dialect = postgresql.dialect()
    arrays = ", ".join(f"CAST(:{k} AS {table.c[k].type.compile(dialect=dialect)}[])" for k in names)
    sets = [f"{k} = v.{k}" for k in names[1:]] + [f"{k} = NULL" for k in sorted({*nulls, "lease_until"})]
    return text(f"{ctes}UPDATE messages SET {', '.join(sets)} FROM unnest({arrays}) AS v({', '.join(names)}) "
                "WHERE messages.id = v.id")


def due_for_enqueue(session: Session, now: datetime, limit: int = 5000) -> list[tuple[int, datetime]]:
    """Sends whose lease expired, then pending rows whose broker hand-off may be lost; marked enqueued."""
    expired, lost = handovers(session, now, limit)
    return [*expired, *lost]


def handovers(session: Session, now: datetime, limit: int = 5000) -> tuple[list[tuple[int, datetime]], list[tuple[int, datetime]]]:
    """(claims whose lease expired, pending rows whose hand-off may be lost), marked enqueued.

    Two queries, each in the order of its partial index (oldest first), rather than one OR:
    with ORDER BY id over both, SQLite chose a scan of the whole outbox. Expired leases come
    first: they are few (at most the batches in flight when a worker died), and a backlog of
    lost hand-offs larger than `limit` must not keep them waiting sweep after sweep.
    """
    stale = now - STALE_ENQUEUE
    expired = [(r[0], r[1]) for r in session.execute(
        select(col(Message.id), col(Message.scheduled_at))
        .where(status_is(MessageStatus.sending), col(Message.lease_until) < now)
        .order_by(col(Message.lease_until)).limit(limit)).all()]
    lost = [(r[0], r[1]) for r in session.execute(
        select(col(Message.id), col(Message.scheduled_at))
        .where(status_is(MessageStatus.pending), col(Message.scheduled_at) <= now,
               or_(col(Message.enqueued_at).is_(None), col(Message.enqueued_at) < stale))
        .order_by(col(Message.scheduled_at)).limit(max(limit - len(expired), 0))).all()]
    ids = [r[0] for r in [*expired, *lost]]
    if ids:
        session.execute(update(Message).where(col(Message.id).in_(ids)).values(enqueued_at=now))
        session.commit()
    return expired, lost


def due_within_horizon(session: Session, now: datetime, limit: int = 5000) -> list[tuple[int, datetime]]:
    """Pending rows due within HANDOFF_HORIZON not handed over since `now`; marked enqueued.

    For a process whose in-process queue died with it: at its next start every such row's
    hand-off is lost, whatever `enqueued_at` says. Call repeatedly until it returns nothing.
    """
    rows = [(r[0], r[1]) for r in session.execute(
        select(col(Message.id), col(Message.scheduled_at))
        .where(status_is(MessageStatus.pending), col(Message.scheduled_at) <= now + HANDOFF_HORIZON,
               or_(col(Message.enqueued_at).is_(None), col(Message.enqueued_at) < now))
        .order_by(col(Message.scheduled_at)).limit(limit)).all()]
    if rows:
        session.execute(update(Message).where(col(Message.id).in_([r[0] for r in rows])).values(enqueued_at=now))
        session.commit()
    return rows


def high_water(session: Session) -> int:
    """The outbox's highest id: what `analyze_if_grown` measures a tick's writes from."""
    return int(session.execute(select(func.max(Message.id))).scalar() or 0)


def analyze_if_grown(session: Session, since_id: int) -> bool:
    """Refresh PostgreSQL's statistics on the outbox once ANALYZE_AFTER rows or more were added
    since `since_id` (by this tick, or by others running at the same time: either way it grew).

    Delivery reads the outbox by id right after a large tick, before autovacuum's analyse (up to
    a minute later). With statistics from when the outbox was small, PostgreSQL claimed a batch of
    50 by scanning every pending row and checked the frequency cap by reading the shop's whole
    range: per batch work growing with the outbox (0.32 ms of database CPU per mail at 10k
    messages, 0.07 after ANALYZE). Skipped when another analyse holds the table (autovacuum's
    covers it); True when it ran.
    """
    return analyze_after(session, high_water(session) - since_id)


def analyze_after(session: Session, grown: int) -> bool:
    """`analyze_if_grown` for a writer that knows how many rows it added (a tick: its INSERTs
    return their rows), without reading the outbox's highest id twice. Every writer checks its
    own rows, so a big tick's growth is seen by that tick, whatever ran beside it."""
    if grown < ANALYZE_AFTER:
        return False
    inserted, live, planned = inserted_since_vacuum(session, "messages")
    # Vacuum when a tick grew the outbox by a fifth of what the planner knew, or when the inserts
    # since the last vacuum pass autovacuum's default insert trigger (1,000 + 20 % of the table):
    # a big tick's rows get their visibility map at once, a busy outbox is not vacuumed after
    # every tick. (The first test needs no statistics collector, which lags behind a commit.)
    vacuum = grown >= planned // 5 or inserted >= 1000 + live // 5
    return refresh_statistics(session, ["messages"], vacuum=vacuum)

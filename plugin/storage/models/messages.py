"""The outbox, its tracking events and the suppression list."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, Exists, Index, String, UniqueConstraint, cast, exists, func, literal, literal_column, text
from sqlmodel import Field, SQLModel

from plugin.storage.upsert import table_of


class MessageStatus(StrEnum):
    pending = "pending"  # written, waiting for delivery at scheduled_at
    sending = "sending"  # claimed by a worker until lease_until
    sent = "sent"  # the channel accepted it
    failed = "failed"  # permanent failure or retries exhausted
    control = "control"  # holdout: recorded, never sent
    cancelled = "cancelled"  # exit condition met or scenario switched off before delivery


IDEMPOTENCY_KEY = ("shop_id", "customer_id", "scenario_key", "trigger_key")  # one message per these, ever
TRIGGER_COLUMNS = ("trigger_kind", "trigger_ref", "trigger_step")  # what a preset's audience returns


@dataclass(frozen=True)
class Trigger:
    """What triggered a message: a kind, the row it points at (if any) and a revision or step.

    `key` is its identity within (shop, customer, scenario): kind, ref and step joined by ':',
    absent parts left out. It is only ever compared, never parsed; rows written before the
    typed columns existed hold exactly the text their typed values give (migration 0014).
    """

    kind: str
    ref: int | None = None
    step: str | None = None

    @property
    def key(self) -> str:
        return ":".join(str(part) for part in (self.kind, self.ref, self.step) if part is not None)


def trigger_key_sql(kind: Any, ref: Any, step: Any) -> ColumnElement[str]:
    """`Trigger.key` in SQL, over columns: the same text on SQLite and PostgreSQL."""
    colon = literal(":")
    return (kind + func.coalesce(colon + cast(ref, String), literal(""))
            + func.coalesce(colon + step, literal("")))


def idempotency_key(message: Message) -> str:
    """The key as one text, for logs: `shop:scenario:customer:trigger`."""
    return f"{message.shop_id}:{message.scenario_key}:{message.customer_id}:{message.trigger_key}"


def rfc_message_id(message: Message) -> str:
    """The mail's Message-ID, the same on every retry: derived from the idempotency key, not
    stored (two text columns were ~11 % of a 1M-customer first tick on SQLite)."""
    return f"<{idempotency_key(message).replace(':', '.')}@okaeri>"


def _only(status: str) -> dict[str, Any]:
    """A partial index's predicate, on both databases."""
    return {"sqlite_where": text(f"status = '{status}'"), "postgresql_where": text(f"status = '{status}'")}


class Message(SQLModel, table=True):
    """One message to one customer; (shop, customer, scenario, trigger) makes a second write of it impossible."""

    __tablename__ = "messages"
    __table_args__ = (
        # The idempotency key as columns, and the outbox's one index by shop: it serves every
        # per-customer probe (the frequency cap, cooldowns, "was the first reminder sent") and,
        # by its prefix, the shop-wide reads (the settings page's counts, switch-off). It is the
        # only index that starts with shop_id, so even without statistics (a new install) no
        # planner can take a shop-wide index for a per-customer probe (one did: 1.4 ms a probe
        # instead of 0.004). A tick writes in customer order: neighbouring index pages.
        UniqueConstraint(*IDEMPOTENCY_KEY, name="uq_messages_trigger"),
        # The sweeper's two questions, each over the few rows still in that state: sent, control
        # and cancelled rows (nearly all of them, in time) are in neither index. Queries reach
        # them only with the status as a literal (`status_is`).
        Index("ix_messages_pending_due", "scheduled_at", **_only("pending")),
        Index("ix_messages_sending_lease", "lease_until", **_only("sending")),
    )

    id: int | None = Field(default=None, primary_key=True)
    # No foreign keys on the outbox: the engine writes rows only from a join on the shop's
    # customers, and the per-row checks were a third of a large tick's write on PostgreSQL.
    shop_id: int
    customer_id: int
    scenario_key: str = Field(max_length=32)
    trigger_key: str = Field(max_length=255)  # identity only (`Trigger.key`): written by the engine, never parsed
    trigger_kind: str = Field(default="", max_length=16)  # e.g. "cart", "post", "restock", "statement"
    trigger_ref: int | None = None  # the cart, order, product or browse event it points at
    trigger_step: str | None = Field(default=None, max_length=32)  # cart revision, post-purchase step, day, period
    channel: str = Field(default="email", max_length=16)
    to_address: str = Field(max_length=255)
    subject: str = Field(default="", max_length=500)
    decision: str = Field(default="", max_length=1000)  # each gate's verdict, in order (plugin.gates.decisions)
    status: MessageStatus = Field(default=MessageStatus.pending, sa_type=String(16))
    scheduled_at: datetime
    lease_until: datetime | None = None
    enqueued_at: datetime | None = None  # last hand-off to the broker; the sweeper redoes stale ones
    attempts: int = 0
    last_error: str = Field(default="", max_length=1000)
    created_at: datetime
    sent_at: datetime | None = None


class MessageEvent(SQLModel, table=True):
    """Open, click, bounce or unsubscribe recorded against a message."""

    __tablename__ = "message_events"
    __table_args__ = (Index("ix_message_events_shop_msg", "shop_id", "message_id"),)

    id: int | None = Field(default=None, primary_key=True)
    shop_id: int = Field(foreign_key="shops.id")
    message_id: int = Field(foreign_key="messages.id")
    kind: str = Field(max_length=16)
    url: str = Field(default="", max_length=1000)
    occurred_at: datetime


class ConsentRecord(SQLModel, table=True):
    """When and how an address opted in or out (特定電子メール法: kept ≥ 1 month after the last send)."""

    __tablename__ = "consent_records"
    __table_args__ = (Index("ix_consent_shop_address", "shop_id", "channel", "address"),)

    id: int | None = Field(default=None, primary_key=True)
    shop_id: int = Field(foreign_key="shops.id")
    channel: str = Field(max_length=16)
    address: str = Field(max_length=255)
    consented: bool
    source: str = Field(max_length=64)  # platform sync, unsubscribe link, one-click header, bounce …
    recorded_at: datetime


class Conversion(SQLModel, table=True):
    """An order attributed to a message (last click within the window); each order at most once."""

    __tablename__ = "conversions"
    __table_args__ = (UniqueConstraint("order_id"), Index("ix_conversions_shop_message", "shop_id", "message_id"))

    id: int | None = Field(default=None, primary_key=True)
    shop_id: int = Field(foreign_key="shops.id")
    order_id: int = Field(foreign_key="orders.id")
    message_id: int = Field(foreign_key="messages.id")
    scenario_key: str = Field(max_length=32)
    revenue: int = 0
    ordered_at: datetime


class Suppression(SQLModel, table=True):
    """An address that must never receive marketing from this shop on this channel."""

    __tablename__ = "suppressions"
    __table_args__ = (UniqueConstraint("shop_id", "channel", "address"),)

    id: int | None = Field(default=None, primary_key=True)
    shop_id: int = Field(foreign_key="shops.id")
    channel: str = Field(max_length=16)
    address: str = Field(max_length=255)
    reason: str = Field(max_length=32)  # unsubscribed, bounced, blocked
    created_at: datetime


def status_is(status: MessageStatus) -> ColumnElement[bool]:
    """`status = '<status>'` with the value inline, not a bound parameter: only then can SQLite
    (and PostgreSQL's generic plans) match it against a partial index's predicate."""
    return table_of(Message).c.status == literal_column(f"'{MessageStatus(status).value}'")


def written(shop_id: Any, customer_id: Any, scenario_key: Any, trigger_key: Any) -> Exists:
    """EXISTS the message of this idempotency key (any status): one probe of the unique index."""
    messages = table_of(Message).c
    return exists().where(messages.shop_id == shop_id, messages.customer_id == customer_id,
                          messages.scenario_key == scenario_key, messages.trigger_key == trigger_key)

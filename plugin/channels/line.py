"""LINE push messages: the second channel, one LINE Official Account per scenario of a shop.

A customer's LINE address is `<account id>:<LINE userId>` (LINE userIds are per provider, and
whether a user follows is per account, so the pair is what one push reaches). A customer is
reached when linked to the scenario's account (plugin.channels.line_links) and following it: the
follow/unfollow webhooks keep that, since a push to a user who blocked the account answers 200
and delivers nothing. Blocking also puts the address on the suppression list.

Each logical send (one outbox message) has one X-Line-Retry-Key, stored before the first attempt
and reused by every retry after a 5xx or a timeout, here or by a later delivery: LINE accepts a
key once and answers 409 to a repeat, which means sent. A 4xx is never retried. The 429 of a used
up monthly quota pauses the account until the quota renews (the console shows it); meanwhile the
next tick moves its waiting messages to the scenario's own channel and writes new ones there
(plugin.engine.reroute).
"""
from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import ColumnElement, Connection, Engine, String, case, exists, false, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col

from plugin.channels.base import Channel, Cipher, Draft, OutgoingMessage, PermanentFailure, TemporaryFailure
from plugin.channels.line_api import (
    LineApi,
    LineQuotaExhausted,
    LineRateLimited,
    LineRefused,
    LineUnauthorized,
    LineUnavailable,
)
from plugin.channels.line_messages import render_line
from plugin.clock import Clock, SystemClock, as_utc
from plugin.settings import Settings
from plugin.storage.models import Customer, LineAccount, LineLink, LinePush, Suppression
from plugin.storage.upsert import table_of

__all__ = ["LineChannel", "line_address", "split_address", "quota_renews_at", "scenario_account", "RETRY_KEY_LIFETIME",
           "TRIES"]

log = logging.getLogger("okaeri.line")
NAME = "line"
RETRY_KEY_LIFETIME = timedelta(hours=23)  # LINE keeps a key 24 h; after that a repeat would be a new push
TRIES = 3  # attempts of one delivery after a 5xx or a timeout, with the same key
ACCOUNT_CACHE = timedelta(seconds=30)
_JST = ZoneInfo("Asia/Tokyo")


def line_address(account_id: int, user_id: str) -> str:
    return f"{account_id}:{user_id}"


def split_address(address: str) -> tuple[int, str]:
    """(account id, userId) of a LINE address; ValueError when it is not one."""
    account, _, user = address.partition(":")
    if not account.isdigit() or not user:
        raise ValueError(f"not a LINE address: {address!r}")
    return int(account), user


def quota_renews_at(now: datetime) -> datetime:
    """The first moment of next month in Japan: when a LINE account's monthly quota starts again."""
    local = as_utc(now).astimezone(_JST)
    year, month = (local.year + 1, 1) if local.month == 12 else (local.year, local.month + 1)
    return datetime(year, month, 1, tzinfo=_JST).astimezone(as_utc(now).tzinfo)


def scenario_account(session: Session, shop_id: int, scenario_key: str) -> LineAccount | None:
    """The account a scenario sends from: the one its setting names (plugin.channels.line_links), else the shop's first."""
    from plugin.channels.line_links import chosen_account_id, shop_accounts

    accounts = shop_accounts(session, shop_id)
    if not accounts:
        return None  # most shops, every tick: the tick's one look-up, shared with refresh
    chosen = chosen_account_id(session, shop_id, scenario_key)
    return next((a for a in accounts if a.id == chosen), accounts[0])


@dataclass(frozen=True)
class _Push:
    retry_key: str
    created_at: datetime
    accepted_at: datetime | None
    attempts: int


def _insert(connection: Connection, table: Any) -> Any:
    return (postgresql if connection.dialect.name == "postgresql" else sqlite).insert(table)


@dataclass
class _ThreadKeys:
    """One delivery thread's keys: queued at render, written before its first push; accepted pushes to note."""

    pending: dict[str, tuple[str, int]] = field(default_factory=dict)  # message key → (retry key, account)
    known: dict[str, _Push] = field(default_factory=dict)
    accepted: list[tuple[str, datetime]] = field(default_factory=list)


@dataclass
class _Account:
    token: str
    paused_until: datetime | None
    loaded_at: datetime


class LineChannel(Channel):
    """Pushes to linked, following LINE users through the Messaging API."""

    name = NAME
    suppression_reason = "blocked"
    preferred = True  # the default rule: LINE when linked and following, else the scenario's channel
    labels = {"ja": "LINE", "en": "LINE"}

    def __init__(self, api: LineApi, sleep: Callable[[float], None] = time.sleep) -> None:
        self.api = api
        self.sleep = sleep
        self.engine: Engine | None = None
        self.cipher: Cipher | None = None
        self.clock: Clock = SystemClock()
        self._accounts: dict[int, _Account] = {}
        self._lock = threading.Lock()
        self._local = threading.local()

    @classmethod
    def from_settings(cls, settings: Settings) -> LineChannel:
        return cls(LineApi(settings.line_api_base, settings.line_timeout))

    def use_transport(self, transport: httpx.BaseTransport, base_url: str = "https://api.line.me") -> None:
        """Talk to a fake LINE (tests, the sandbox) instead of api.line.me."""
        self.api.close()
        self.api = LineApi(base_url, self.api_timeout, transport=transport)

    @property
    def api_timeout(self) -> float:
        timeout = self.api._client.timeout.read
        return float(timeout) if timeout is not None else 10.0

    def attach(self, engine: Engine, cipher: Cipher, clock: Clock) -> None:
        self.engine, self.cipher, self.clock = engine, cipher, clock

    # -- whom it reaches -------------------------------------------------------------------------

    def bind(self, session: Session, shop_id: int, scenario_key: str) -> Channel | None:
        account = scenario_account(session, shop_id, scenario_key)
        if account is None:
            return None  # the shop has no LINE account: LINE is no choice at all
        paused = account.paused_until is not None and as_utc(account.paused_until) > self.clock.now()
        return _AccountReach(self, account.id or 0, paused)

    def refresh(self, session: Session, shop_id: int, now: datetime) -> None:
        """Customers whose platform knows their LINE user (synced since the last tick) are linked."""
        from plugin.channels.line_links import link_platform_customers

        link_platform_customers(session, shop_id, now)

    def address(self) -> ColumnElement[str]:
        return _reach_address(None)

    def consented(self) -> ColumnElement[bool]:
        return _following(None)

    def accepts(self, customer: Customer) -> bool:
        """Linked and following some account of the shop (the address's own block is on the suppression list)."""
        if self.engine is None or customer.id is None:
            return False
        with Session(self.engine) as session:
            return session.execute(select(col(LineLink.id)).where(
                col(LineLink.customer_id) == customer.id, col(LineLink.shop_id) == customer.shop_id,
                col(LineLink.following).is_(True)).limit(1)).first() is not None

    # -- what it sends ---------------------------------------------------------------------------

    def render(self, draft: Draft) -> OutgoingMessage:
        subject, text, messages = render_line(draft)
        self._queue_key(draft.message_id, draft.to_address)
        return OutgoingMessage(message_id=draft.message_id, to_address=draft.to_address, to_name=draft.to_name,
                               from_name=draft.from_name, subject=subject, body_text=text, body_html="",
                               unsubscribe_url=draft.unsubscribe_url, payload=messages)

    def send(self, message: OutgoingMessage) -> None:
        try:
            account_id, user_id = split_address(message.to_address)
        except ValueError as exc:
            raise PermanentFailure(str(exc), bad_address=False) from exc
        account = self._account(account_id)
        now = self.clock.now()
        if account.paused_until is not None and as_utc(account.paused_until) > now:
            raise TemporaryFailure(f"LINE account {account_id} is paused", retry_at=as_utc(account.paused_until))
        push = self._push_record(message.message_id, account_id, now)
        if push.accepted_at is not None:
            return  # LINE took it before (the worker died before the outbox knew): sent
        self._push(message, account_id, user_id, account.token, push.retry_key)

    def _push(self, message: OutgoingMessage, account_id: int, user_id: str, token: str, retry_key: str) -> None:
        messages = message.payload or [{"type": "text", "text": message.body_text}]
        for attempt in range(TRIES):
            try:
                result = self.api.push(token, user_id, messages, retry_key)
            except LineUnavailable as exc:
                self._note_uncertain(message.message_id)
                if attempt == TRIES - 1:
                    raise TemporaryFailure(f"{exc} (retried with the same X-Line-Retry-Key)") from exc
                self.sleep(0.5 * (attempt + 1))
                continue
            except LineQuotaExhausted as exc:
                until = quota_renews_at(self.clock.now())
                self._pause(account_id, until, "quota")
                raise TemporaryFailure(f"{exc}: account {account_id} paused until {until.isoformat()}", retry_at=until) from exc
            except LineRateLimited as exc:
                raise TemporaryFailure(str(exc)) from exc
            except LineUnauthorized as exc:
                until = self.clock.now() + timedelta(days=30)
                self._pause(account_id, until, "unauthorized")
                raise TemporaryFailure(f"{exc}: account {account_id} paused until its token is entered again",
                                       retry_at=until) from exc
            except LineRefused as exc:
                raise PermanentFailure(str(exc), bad_address=exc.status == 400 and "failed to send" in exc.message.lower()) \
                    from exc
            self._accepted(message.message_id)
            log.info("okaeri.line.pushed", extra={"account_id": account_id, "repeat": result.already_accepted})
            return

    # -- state: accounts and retry keys --------------------------------------------------------

    def _session(self) -> Session:
        if self.engine is None:
            raise TemporaryFailure("LINE channel not attached to a database")
        return Session(self.engine, expire_on_commit=False)

    def _account(self, account_id: int) -> _Account:
        now = self.clock.now()
        with self._lock:
            cached = self._accounts.get(account_id)
        if cached is not None and now - cached.loaded_at < ACCOUNT_CACHE:
            return cached
        with self._session() as session:
            row = session.get(LineAccount, account_id)
        if row is None or self.cipher is None:
            raise PermanentFailure(f"LINE account {account_id} no longer exists", bad_address=False)
        account = _Account(self.cipher.decrypt(row.token_encrypted), row.paused_until, now)
        with self._lock:
            self._accounts[account_id] = account
        return account

    def forget_account(self, account_id: int) -> None:
        """Its token or pause changed (the console): read it again."""
        with self._lock:
            self._accounts.pop(account_id, None)

    def _queue_key(self, message_key: str, address: str) -> None:
        """A key for a push about to be sent: delivery renders a whole batch before sending any, so
        the batch's keys are written in one statement, before the batch's first push."""
        try:
            account_id, _ = split_address(address)
        except ValueError:
            return
        pending = self._thread().pending
        if len(pending) < 5000:  # renders never sent (previews) must not grow it without end
            pending.setdefault(message_key, (str(uuid.uuid4()), account_id))

    def _thread(self) -> _ThreadKeys:
        keys = getattr(self._local, "keys", None)
        if keys is None:
            keys = self._local.keys = _ThreadKeys()
        return keys

    def _push_record(self, message_key: str, account_id: int, now: datetime) -> _Push:
        """The logical send's retry key, written (committed) before its first attempt."""
        keys = self._thread()
        push = keys.known.pop(message_key, None)
        if push is None:
            keys.pending.setdefault(message_key, (str(uuid.uuid4()), account_id))
            keys.known = self._write_keys(keys, now)
            push = keys.known.pop(message_key)
        if push.accepted_at is None and now - push.created_at > RETRY_KEY_LIFETIME:
            if push.attempts:  # LINE may have it under a key it has forgotten: never risk a second push
                raise PermanentFailure("the X-Line-Retry-Key is older than 24 h and an earlier attempt's outcome "
                                       "is unknown: not sent again", bad_address=False)
            fresh = str(uuid.uuid4())  # nothing ever reached LINE: a fresh key is safe
            self._update(message_key, retry_key=fresh, created_at=now)
            push = _Push(fresh, now, None, 0)
        return push

    def _write_keys(self, keys: _ThreadKeys, now: datetime) -> dict[str, _Push]:
        """One transaction: the accepted pushes noted since the last one, then every queued key
        (INSERT … ON CONFLICT DO NOTHING RETURNING), then the rows a retry already had."""
        if self.engine is None:
            raise TemporaryFailure("LINE channel not attached to a database")
        pushes = table_of(LinePush)
        columns = (pushes.c.message_key, pushes.c.retry_key, pushes.c.created_at, pushes.c.accepted_at, pushes.c.attempts)
        pending, accepted = keys.pending, keys.accepted
        keys.pending, keys.accepted = {}, []
        found: dict[str, _Push] = {}
        with self.engine.begin() as connection:
            if connection.dialect.name == "postgresql":  # as the outbox's marks: a killed worker loses nothing committed
                connection.exec_driver_sql("SET LOCAL synchronous_commit TO off")
            if accepted:
                connection.execute(update(pushes).where(pushes.c.message_key.in_([k for k, _ in accepted]),
                                                        pushes.c.accepted_at.is_(None)).values(accepted_at=accepted[-1][1]))
            rows = [{"message_key": key, "retry_key": retry_key, "account_id": account_id, "created_at": now,
                     "accepted_at": None, "attempts": 0} for key, (retry_key, account_id) in pending.items()]
            for row in connection.execute(_insert(connection, pushes).values(rows).on_conflict_do_nothing(
                    index_elements=["message_key"]).returning(*columns)):
                found[row[0]] = _Push(row[1], as_utc(row[2]), row[3], row[4])
            missing = [key for key in pending if key not in found]
            if missing:
                for row in connection.execute(select(*columns).where(pushes.c.message_key.in_(missing))):
                    found[row[0]] = _Push(row[1], as_utc(row[2]), as_utc(row[3]) if row[3] else None, row[4])
        return found

    def _note_uncertain(self, message_key: str) -> None:
        self._update(message_key, attempts=table_of(LinePush).c.attempts + 1)

    def _accepted(self, message_key: str) -> None:
        """Noted, written with the next keys: if it is lost, a retry gets LINE's 409, which is sent too."""
        self._thread().accepted.append((message_key, self.clock.now()))

    def _update(self, message_key: str, **values: Any) -> None:
        assert self.engine is not None
        pushes = table_of(LinePush)
        with self.engine.begin() as connection:
            connection.execute(update(pushes).where(pushes.c.message_key == message_key).values(**values))

    def _pause(self, account_id: int, until: datetime, reason: str) -> None:
        with self._session() as session:
            session.execute(update(LineAccount).where(col(LineAccount.id) == account_id)
                            .values(paused_until=until, pause_reason=reason))
            session.commit()
        self.forget_account(account_id)
        log.warning("okaeri.line.paused", extra={"account_id": account_id, "reason": reason, "until": until.isoformat()})

    def close(self) -> None:
        self.api.close()


class _AccountReach(Channel):
    """LINE as it reaches one shop's customers for one scenario: through that scenario's account."""

    name = NAME
    suppression_reason = "blocked"
    preferred = True
    labels = LineChannel.labels

    def __init__(self, channel: LineChannel, account_id: int, paused: bool) -> None:
        self.channel, self.account_id = channel, account_id
        self.idle_reason = "paused" if paused else ""

    def address(self) -> ColumnElement[str]:
        return _reach_address(self.account_id)

    def consented(self) -> ColumnElement[bool]:
        return false() if self.idle_reason else _following(self.account_id)

    def accepts(self, customer: Customer) -> bool:
        return self.channel.accepts(customer)

    def unreachable(self, customer_id: ColumnElement[int]) -> ColumnElement[str]:
        links = table_of(LineLink).c
        blocked = exists().where(links.customer_id == customer_id, links.account_id == self.account_id,
                                 links.following.is_(False))
        linked = exists().where(links.customer_id == customer_id, links.account_id == self.account_id)
        suppressed = exists().where(col(Suppression.channel) == NAME,
                                    col(Suppression.address) == _reach_address(self.account_id, customer_id))
        return case((blocked, literal("blocked")), (suppressed, literal("stopped")), (linked, literal("linked")),
                    else_=literal("unlinked"))

    def render(self, draft: Draft) -> OutgoingMessage:
        return self.channel.render(draft)

    def send(self, message: OutgoingMessage) -> None:
        self.channel.send(message)


def _reach_address(account_id: int | None, customer_id: ColumnElement[int] | None = None) -> ColumnElement[str]:
    """`<account>:<userId>` of the customer's link to this account (any account of the shop: the first)."""
    links = table_of(LineLink).c
    query = select(links.account_id.cast(String) + literal(":") + links.line_user_id).where(
        links.customer_id == (table_of(Customer).c.id if customer_id is None else customer_id))
    if account_id is not None:
        query = query.where(links.account_id == account_id)
    if customer_id is None:  # the customers of the enclosing query, however deep it sits (the consent gate's EXISTS)
        query = query.correlate(table_of(Customer))
    return query.order_by(links.account_id).limit(1).scalar_subquery()


def _following(account_id: int | None) -> ColumnElement[bool]:
    links = table_of(LineLink).c
    customers = table_of(Customer).c
    conditions = [links.customer_id == customers.id, links.following.is_(True)]
    if account_id is not None:
        conditions.append(links.account_id == account_id)
    return exists().where(*conditions)


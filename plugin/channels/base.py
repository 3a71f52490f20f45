"""The channel interface: one channel per `Message.channel` value.

A channel knows whom it can reach (the customer column holding the address, the consent that
lets it send there, the suppression kind that stops it), renders its own part of a message from
the scenario's context, and delivers it. It knows nothing of scenarios, platforms or the outbox.

    Channel.address()        SQL: the customer's address on this channel (written as to_address)
    Channel.consented()      SQL: the customer opted in and has an address
    Channel.accepts(c)       the same rule for one loaded customer, re-checked at delivery
    Channel.render(draft)    the channel's own rendering of a scenario's copy and variables
    Channel.send(message)    deliver; raises TemporaryFailure (retry) or PermanentFailure (fail,
                             and suppress the address when the failure says it is bad)

Channels that keep state of their own (accounts per shop, retry keys) also use:

    Channel.attach(...)      the runtime's engine, cipher and clock, once at start
    Channel.bind(...)        the channel as it reaches one shop's customers for one scenario (an
                             account), None when the shop has not set it up
    Channel.refresh(...)     once before a shop's tick: bring its own data up to date
    Channel.unreachable(c)   SQL: why customer c is not reached on it (the decision record)
    Channel.preferred        tried before a scenario's own channel when the shop's rule does not say

`send` must not return until the channel has accepted the message, and must not retry a
transfer whose outcome it cannot know (a connection lost after the body went out): delivery
records each accepted message before the next one, so an unknown outcome is retried later, once.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import ColumnElement, Engine
from sqlmodel import Session

from plugin.clock import Clock
from plugin.storage.models import Customer

__all__ = ["Cipher", "OutgoingMessage", "Draft", "Copy", "TemporaryFailure", "PermanentFailure", "Channel"]


@dataclass(frozen=True)
class OutgoingMessage:
    """A rendered message ready for a channel; `message_id` is stable across retries."""

    message_id: str
    to_address: str
    to_name: str
    from_name: str
    subject: str
    body_text: str
    body_html: str
    unsubscribe_url: str
    outbox_id: int = 0  # the outbox row (0: a preview or test send), for replies that come back (bounces)
    payload: Any = None  # a channel's own rendered form beside the texts (LINE: its message objects)


class Cipher(Protocol):
    """What a channel needs of the runtime's TokenCipher (plugin.crypto): secrets at rest."""

    def encrypt(self, token: str) -> str: ...
    def decrypt(self, ciphertext: str) -> str: ...


class Copy(Protocol):
    """A preset's words in one language (Jinja2 strings); scenarios.base.Copy has this shape.

    Read-only members, so a frozen dataclass satisfies it."""

    @property
    def subject(self) -> str: ...
    @property
    def headline(self) -> str: ...
    @property
    def intro(self) -> str: ...
    @property
    def cta(self) -> str: ...
    @property
    def items_title(self) -> str: ...


@dataclass(frozen=True)
class Draft:
    """What delivery hands a channel to render: the preset's copy, the merchant's overrides, the
    template variables of one message, and how links and the open pixel are made."""

    message_id: str
    to_address: str
    to_name: str
    from_name: str
    copy: Copy
    locale: str
    variables: dict[str, Any]
    subject_template: str | None
    intro_template: str | None
    link: Callable[[str], str]
    pixel_url: str
    unsubscribe_url: str
    outbox_id: int = 0  # the outbox row it renders (0: a preview or test send)


class TemporaryFailure(Exception):
    """The channel may accept the message later: retry with backoff.

    `relay_down`: the channel cannot be reached at all (no connection), so the rest of a batch
    would fail the same way and is retried later without being tried now.

    `retry_at`: not before then (an account paused until its quota renews); None: the usual backoff.
    """

    def __init__(self, reason: str, *, relay_down: bool = False, retry_at: datetime | None = None) -> None:
        super().__init__(reason)
        self.relay_down = relay_down
        self.retry_at = retry_at


class PermanentFailure(Exception):
    """The channel will never accept it: fail the message.

    `bad_address` (the default): the address itself is refused (no such mailbox, blocked), so it
    goes on the suppression list; False when the refusal is about this message (content, policy).
    """

    def __init__(self, reason: str, *, bad_address: bool = True) -> None:
        super().__init__(reason)
        self.bad_address = bad_address


class Channel:
    """Base class of delivery channels. Subclasses set `name` and implement every method."""

    name: str = ""
    suppression_reason: str = "bounced"  # what a permanent failure puts on the suppression list
    preferred: bool = False  # the default rule tries it first, falling back to the scenario's channel
    labels: dict[str, str] = {}  # its name for merchants, by locale
    idle_reason: str = ""  # a bound channel that reaches nobody now (an account paused): why, as a token

    def attach(self, engine: Engine, cipher: Cipher, clock: Clock) -> None:
        """Resources of the runtime a channel with state of its own uses; by default none."""

    def bind(self, session: Session, shop_id: int, scenario_key: str) -> Channel | None:
        """This channel as it reaches one shop's customers for one scenario; None when the shop has
        not set it up (then it is no choice at all). By default itself."""
        return self

    def refresh(self, session: Session, shop_id: int, now: datetime) -> None:
        """Bring what the channel knows of this shop's customers up to date, once before a tick
        (LINE: link the customers whose platform knows their LINE user). By default nothing."""

    def unreachable(self, customer_id: ColumnElement[int]) -> ColumnElement[str] | None:
        """SQL: a short token saying why the customer with this id is not reached on it, for the
        decision record of the channel chosen instead; None when it has nothing to say."""
        return None

    def address(self) -> ColumnElement[str]:
        """The Customer column that holds this channel's address (written as `to_address`)."""
        raise NotImplementedError

    def consented(self) -> ColumnElement[bool]:
        """SQL condition: the customer opted in to this channel and has an address on it."""
        raise NotImplementedError

    def accepts(self, customer: Customer) -> bool:
        """`consented()` for one loaded customer, re-checked right before delivery."""
        raise NotImplementedError

    def render(self, draft: Draft) -> OutgoingMessage:
        """Render one message; raise `plugin.channels.layout.CopyError` for a broken template."""
        raise NotImplementedError

    def send(self, message: OutgoingMessage) -> None:
        """Deliver one rendered message; raise TemporaryFailure or PermanentFailure on failure."""
        raise NotImplementedError

    def send_after(self, message: OutgoingMessage, ready: Callable[[], None]) -> None:
        """`send`, calling `ready()` before anything of the message that could be accepted goes out
        (delivery confirms the previous mail's mark there). By default first; a channel may call
        it later, after its own setup, so that the two overlap."""
        ready()
        self.send(message)

    def close(self) -> None:
        """Release connections."""

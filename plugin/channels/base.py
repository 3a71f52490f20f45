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

`send` must not return until the channel has accepted the message, and must not retry a
transfer whose outcome it cannot know (a connection lost after the body went out): delivery
records each accepted message before the next one, so an unknown outcome is retried later, once.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import ColumnElement

from plugin.storage.models import Customer

__all__ = ["OutgoingMessage", "Draft", "Copy", "TemporaryFailure", "PermanentFailure", "Channel"]


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
    """

    def __init__(self, reason: str, *, relay_down: bool = False) -> None:
        super().__init__(reason)
        self.relay_down = relay_down


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

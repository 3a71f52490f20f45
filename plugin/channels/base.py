"""The channel interface and its outcome types."""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["OutgoingMessage", "TemporaryFailure", "PermanentFailure", "Channel"]


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


class TemporaryFailure(Exception):
    """The channel may accept the message later: retry with backoff."""


class PermanentFailure(Exception):
    """The channel will never accept it (bad address, rejected): suppress and stop."""


class Channel:
    """Delivers one message; raises TemporaryFailure or PermanentFailure on failure."""

    name: str = ""

    def send(self, message: OutgoingMessage) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Release connections."""

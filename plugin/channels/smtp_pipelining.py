"""SMTP command pipelining (RFC 2920) on an `smtplib.SMTP` connection.

smtplib waits for each reply before the next command: four round trips a mail (MAIL, RCPT, DATA,
the body). A relay that advertises PIPELINING (Postfix does by default, as do the large senders'
relays) takes MAIL, RCPT and DATA in one write, which halves the round trips; the body still waits
for DATA's 354, so nothing of the mail is transferred before the envelope is known to be accepted.
"""
from __future__ import annotations

import re
import smtplib
from dataclasses import dataclass

__all__ = ["Envelope", "offered", "send_envelope", "send_body"]

_LEADING_DOT = re.compile(rb"(?m)^\.")


@dataclass(frozen=True)
class Envelope:
    """The three replies to a pipelined MAIL, RCPT and DATA, in that order."""

    mail: tuple[int, bytes]
    rcpt: tuple[int, bytes]
    data: tuple[int, bytes]

    @property
    def open(self) -> bool:
        """The relay waits for the body (354): the connection is in the middle of DATA."""
        return self.data[0] == 354


def offered(connection: smtplib.SMTP) -> bool:
    """Whether the relay advertised PIPELINING in its EHLO reply (EHLO is sent first if needed)."""
    connection.ehlo_or_helo_if_needed()
    return bool(connection.does_esmtp and connection.has_extn("pipelining"))


def send_envelope(connection: smtplib.SMTP, sender: str, recipient: str) -> Envelope:
    """MAIL FROM, RCPT TO and DATA in one write, then their three replies (each command is answered
    even when an earlier one was refused: a relay answers RCPT and DATA with 503 after a refused
    MAIL). Raises what smtplib raises for a lost connection."""
    connection.send(f"MAIL FROM:{smtplib.quoteaddr(sender)}\r\nRCPT TO:{smtplib.quoteaddr(recipient)}\r\nDATA\r\n")
    return Envelope(connection.getreply(), connection.getreply(), connection.getreply())


def send_body(connection: smtplib.SMTP, raw: bytes) -> tuple[int, bytes]:
    """The message after DATA's 354, dot-stuffed and ended as smtplib's `data` does; the relay's reply."""
    body = _LEADING_DOT.sub(b"..", raw)
    if not body.endswith(b"\r\n"):
        body += b"\r\n"
    connection.send(body + b".\r\n")
    return connection.getreply()

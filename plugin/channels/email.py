"""Email over SMTP: pooled connections and MIME that Japanese mail clients read correctly."""
from __future__ import annotations

import base64
import hashlib
import queue
import re
import smtplib
from collections.abc import Callable
from dataclasses import dataclass
from email.header import Header
from email.policy import compat32
from email.utils import formataddr, formatdate
from functools import lru_cache

from sqlalchemy import ColumnElement, and_

from plugin.channels.base import Channel, Draft, OutgoingMessage, PermanentFailure, TemporaryFailure
from plugin.channels.dkim import DkimSigner
from plugin.channels.layout import render_message
from plugin.channels.smtp_pipelining import Envelope, offered, send_body, send_envelope
from plugin.channels.verp import REF_HEADER, ReturnPath
from plugin.settings import Settings
from plugin.storage.models import Customer
from plugin.storage.upsert import table_of

__all__ = ["SmtpConfig", "EmailChannel", "build_mime"]

_SMTP_POLICY = compat32.clone(linesep="\r\n")
_PRINTABLE_ASCII = re.compile(r"[\x20-\x7e]*")  # no control characters: str.splitlines breaks at \x1c-\x1e too


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    user: str
    password: str
    starttls: bool
    timeout: float
    mail_from: str

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpConfig:
        return cls(settings.smtp_host, settings.smtp_port, settings.smtp_user,
                   settings.smtp_password, settings.smtp_starttls, settings.smtp_timeout,
                   settings.mail_from)


def build_mime(message: OutgoingMessage, mail_from: str) -> bytes:
    """Two-part (text + HTML) UTF-8 message with RFC 2047 headers and RFC 8058 unsubscribe.

    Written directly, byte for byte what the email package's compat32 generator writes for this
    shape (tests/test_mime_writer.py holds it to that): the package's per-header folding cost more
    than half of a delivered mail's CPU. Headers that are not short ASCII still go through
    compat32's folding, and an encoded subject or sender is reused while it repeats.
    """
    boundary = f"==okaeri_{_boundary_tag(message.message_id)}"
    head = b"".join((
        b'Content-Type: multipart/alternative;\r\n boundary="', boundary.encode(), b'"\r\nMIME-Version: 1.0\r\n',
        _encoded_header("Subject", message.subject),
        _folded("From", _address(message.from_name, mail_from)),
        _folded("To", _address(message.to_name, message.to_address)),
        _folded("Date", formatdate(localtime=False, usegmt=True)),
        _folded("Message-ID", message.message_id),
        _folded("List-Unsubscribe", f"<{message.unsubscribe_url}>"),
        b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n\r\n",
    ))
    delimiter = f"--{boundary}\r\n".encode()
    return b"".join((head, delimiter, _part("plain", message.body_text), b"\r\n", delimiter,
                     _part("html", message.body_html), b"\r\n", f"--{boundary}--\r\n".encode()))


def _folded(name: str, value: str) -> bytes:
    """One header line as compat32 writes it: a short ASCII line as it is, anything else folded by
    the policy itself."""
    if len(name) + len(value) < 77 and _PRINTABLE_ASCII.fullmatch(value):
        return f"{name}: {value}\r\n".encode()
    return _SMTP_POLICY.fold_binary(name, value)


@lru_cache(maxsize=512)
def _encoded_header(name: str, value: str) -> bytes:
    return _SMTP_POLICY.fold_binary(name, Header(value, "utf-8"))  # type: ignore[arg-type]  # compat32 takes a Header


@lru_cache(maxsize=512)
def _address(name: str, address: str) -> str:
    return formataddr((name, address), charset="utf-8")


def _part(subtype: str, text: str) -> bytes:
    """A text part: UTF-8, base64 in lines of 76, as MIMEText(text, subtype, "utf-8") writes it."""
    encoded = base64.encodebytes(text.encode("utf-8")).replace(b"\n", b"\r\n")
    return (f'Content-Type: text/{subtype}; charset="utf-8"\r\nMIME-Version: 1.0\r\n'
            f"Content-Transfer-Encoding: base64\r\n\r\n").encode() + encoded


def _boundary_tag(message_id: str) -> str:
    return hashlib.sha256(message_id.encode()).hexdigest()[:24]


class EmailChannel(Channel):
    """Mail to the customer's address with mail consent; sent through a bounded pool of reused
    SMTP connections."""

    name = "email"
    labels = {"ja": "メール", "en": "email"}

    def __init__(self, config: SmtpConfig, pool_size: int = 4, *, dkim: DkimSigner | None = None,
                 return_path: ReturnPath | None = None) -> None:
        self.config = config
        self.dkim = dkim  # signs every mail when set
        self.return_path = return_path  # a VERP envelope sender per outbox row when set
        self._idle: queue.LifoQueue[smtplib.SMTP] = queue.LifoQueue()
        self._slots = queue.Queue[None]()
        for _ in range(pool_size):
            self._slots.put(None)

    @classmethod
    def from_settings(cls, settings: Settings) -> EmailChannel:
        """The SMTP relay of OKAERI_SMTP_*, one pooled connection per worker thread; DKIM of
        OKAERI_DKIM_*, VERP of OKAERI_BOUNCE_DOMAIN."""
        return cls(SmtpConfig.from_settings(settings), pool_size=settings.worker_threads,
                   dkim=DkimSigner.from_settings(settings), return_path=ReturnPath.from_settings(settings))

    def address(self) -> ColumnElement[str]:
        return table_of(Customer).c.email

    def consented(self) -> ColumnElement[bool]:
        columns = table_of(Customer).c
        return and_(columns.email_consent.is_(True), columns.email != "")

    def accepts(self, customer: Customer) -> bool:
        return bool(customer.email_consent and customer.email)

    def render(self, draft: Draft) -> OutgoingMessage:
        """The standard layout: subject, a plain-text part and an HTML part with the open pixel."""
        subject, text, html = render_message(draft.copy, draft.locale, draft.variables, subject=draft.subject_template,
                                             intro=draft.intro_template, link=draft.link, pixel_url=draft.pixel_url)
        return OutgoingMessage(message_id=draft.message_id, to_address=draft.to_address, to_name=draft.to_name,
                               from_name=draft.from_name, subject=subject, body_text=text, body_html=html,
                               unsubscribe_url=draft.unsubscribe_url, outbox_id=draft.outbox_id)

    def send(self, message: OutgoingMessage) -> None:
        self.send_after(message, lambda: None)

    def send_after(self, message: OutgoingMessage, ready: Callable[[], None]) -> None:
        """`ready()` is called between the envelope and DATA."""
        sender, raw = self._sealed(message)
        self._slots.get()  # bounds concurrent connections to pool_size
        try:
            self._send_raw(raw, sender, message.to_address, ready)
        finally:
            self._slots.put(None)

    def _sealed(self, message: OutgoingMessage) -> tuple[str, bytes]:
        """The envelope sender and the bytes DATA sends: VERP reference, then the DKIM signature
        over exactly those bytes (smtplib adds only dot-stuffing, which the receiver removes)."""
        raw = build_mime(message, self.config.mail_from)
        sender = self.config.mail_from
        if self.return_path is not None and message.outbox_id:
            ref = self.return_path.ref(message.outbox_id)
            raw = f"{REF_HEADER}: {ref}\r\n".encode() + raw
            sender = self.return_path.address(ref)
        return sender, self.dkim.sign(raw) if self.dkim is not None else raw

    def _send_raw(self, raw: bytes, sender: str, to_address: str, ready: Callable[[], None]) -> None:
        """Envelope, then the body once: a transfer cut off after the body went out may have been
        accepted, so it is never repeated here (delivery retries it later, with the same Message-ID)."""
        connection, in_data = self._envelope(sender, to_address)
        try:
            ready()
        except BaseException:
            if in_data:  # the relay waits for a body: only closing ends that without sending one
                self._discard(connection)
            else:
                self._reset(connection)
            raise
        try:
            code, reply = send_body(connection, raw) if in_data else connection.data(raw)
        except smtplib.SMTPResponseException as exc:  # DATA itself refused: nothing was transferred
            self._discard(connection)
            raise _failure(exc.smtp_code, exc.smtp_error) from exc
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            self._discard(connection)
            raise TemporaryFailure(f"SMTP connection lost during DATA (outcome unknown): {exc}") from exc
        if code != 250:
            self._discard(connection)
            raise _failure(code, reply)
        self._checkin(connection)

    def _envelope(self, sender: str, to_address: str) -> tuple[smtplib.SMTP, bool]:
        """MAIL FROM and RCPT TO on a pooled connection, and DATA too when the relay pipelines
        (then the connection is returned waiting for the body: True); a reused one the server has
        closed in the meantime is replaced once (nothing of this message was sent on it)."""
        for attempt in range(2):
            connection = self._checkout()
            try:
                if offered(connection):
                    envelope = send_envelope(connection, sender, to_address)
                    code, reply = envelope.mail
                    if code == 421 and not attempt:
                        self._discard(connection)
                        continue
                    self._refused(connection, envelope)
                    return connection, True
                code, reply = connection.mail(sender)
                if code == 421 and not attempt:  # an idle connection the server is closing
                    self._discard(connection)
                    continue
                if code != 250:
                    self._discard(connection)
                    raise _failure(code, reply)
                code, reply = connection.rcpt(to_address)
                if code not in (250, 251):
                    self._reset(connection)
                    raise _failure(code, reply, recipient=True)
                return connection, False
            except (smtplib.SMTPServerDisconnected, OSError, smtplib.SMTPResponseException) as exc:
                self._discard(connection)
                if attempt or isinstance(exc, smtplib.SMTPResponseException):
                    raise TemporaryFailure(f"SMTP connection failed: {exc}") from exc
        raise AssertionError("unreachable")

    def _refused(self, connection: smtplib.SMTP, envelope: Envelope) -> None:
        """Raise the failure of the first refused command of a pipelined envelope, leaving the
        connection as the sequential path would: closed after a refused sender, RSET after a
        refused recipient, closed when the relay nonetheless waits for a body."""
        refusal = next(((code, reply, recipient) for (code, reply), ok, recipient in (
            (envelope.mail, (250,), False), (envelope.rcpt, (250, 251), True), (envelope.data, (354,), False))
            if code not in ok), None)
        if refusal is None:
            return
        code, reply, recipient = refusal
        if envelope.open or envelope.mail[0] != 250 or not recipient:
            self._discard(connection)
        else:
            self._reset(connection)
        raise _failure(code, reply, recipient=recipient)

    def _checkout(self) -> smtplib.SMTP:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            return self._connect()

    def _connect(self) -> smtplib.SMTP:
        cfg = self.config
        try:
            connection = smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout)
            if cfg.starttls:
                connection.starttls()
            if cfg.user:
                connection.login(cfg.user, cfg.password)
        except (TimeoutError, OSError, smtplib.SMTPException) as exc:
            raise TemporaryFailure(f"cannot connect to SMTP {cfg.host}:{cfg.port}: {exc}", relay_down=True) from exc
        return connection

    def _reset(self, connection: smtplib.SMTP) -> None:
        """After a refused recipient the connection stays usable once RSET."""
        try:
            connection.rset()
        except (OSError, smtplib.SMTPException):
            self._discard(connection)
            return
        self._checkin(connection)

    def _checkin(self, connection: smtplib.SMTP) -> None:
        self._idle.put(connection)

    def _discard(self, connection: smtplib.SMTP) -> None:
        try:
            connection.close()
        except OSError:
            pass

    def close(self) -> None:
        while True:
            try:
                connection = self._idle.get_nowait()
            except queue.Empty:
                return
            try:
                connection.quit()
            except (OSError, smtplib.SMTPException):
                connection.close()


# Enhanced status codes (RFC 3463) that say the recipient's address is bad: 5.1.x about the
# destination mailbox or system (not 5.1.7/5.1.8, which are about the sender), 5.2.1 disabled.
_BAD_ADDRESS = re.compile(r"5\.1\.(0|1|2|3|4|6|10)|5\.2\.1")
_ENHANCED = re.compile(r"[245]\.\d{1,3}\.\d{1,3}")


def _failure(code: int, text: bytes | str, *, recipient: bool = False) -> Exception:
    """4xx: try again later; 5xx: fail, and the address is bad when the reply says so (or, with no
    enhanced code, when RCPT was refused with 550/551/553: "no such user")."""
    detail = text.decode(errors="replace") if isinstance(text, bytes) else text
    if not 500 <= code < 600:
        return TemporaryFailure(f"SMTP {code}: {detail}")
    status = detail.split(None, 1)[0] if detail.strip() else ""
    if _ENHANCED.fullmatch(status):
        bad = bool(_BAD_ADDRESS.fullmatch(status))
    else:
        bad = recipient and code in (550, 551, 553)
    return PermanentFailure(f"SMTP {code}: {detail}", bad_address=bad)

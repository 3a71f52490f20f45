"""Read an inbound report mail: a DSN (RFC 3464), an ARF complaint (RFC 5965), or a bounce in one of
the older non-standard formats (flufl.bounce's detectors know them).

    hard bounce   Action: failed with 5.1.x (no such mailbox or domain) or 5.2.1 (disabled), or a
                  permanent failure a non-DSN bounce names
    soft bounce   any other failure: 5.x about this message (full mailbox 5.2.2, policy 5.7.x,
                  too big 5.3.4) or 4.x given up after retries
    complaint     multipart/report; report-type=feedback-report with Feedback-Type abuse, fraud,
                  virus or other (not-spam and auth-failure are not complaints)

Delayed notices (Action: delayed) and anything else are not failures: `read_report` returns None.
Which message a report is about comes from the signed VERP references it carries, never from the
addresses it claims (see plugin.channels.verp).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32

from flufl.bounce import all_failures

from plugin.channels.verp import LOCAL_PART, REF_HEADER
from plugin.storage.delivery_reports import Report
from plugin.storage.models import ReportKind

__all__ = ["InboundReport", "read_report", "refs_in"]

_HARD = re.compile(r"5\.1\.(0|1|2|3|4|6|10)|5\.2\.1")  # the address itself is bad (as plugin.channels.email decides at RCPT)
_STATUS = re.compile(r"[245]\.\d{1,3}\.\d{1,3}")
_COMPLAINTS = {"abuse", "fraud", "virus", "other"}
_REFS = re.compile(rb"(?:" + REF_HEADER.encode() + rb":[ \t]*|" + LOCAL_PART.encode() + rb"\+)(\d{1,18}-[0-9a-fA-F]{32})")


@dataclass(frozen=True)
class InboundReport:
    report: Report
    refs: list[str] = field(default_factory=list)  # VERP references found inside, unchecked, in order


def read_report(raw: bytes) -> InboundReport | None:
    """The report one inbound mail makes, or None when it reports no failure or complaint."""
    mail = message_from_bytes(raw, policy=compat32)
    report = _complaint(mail) if _is_feedback(mail) else _dsn_failure(mail)
    if report is None and not _is_feedback(mail):
        report = _other_bounce(mail)
    return InboundReport(report, refs_in(raw)) if report is not None else None


def refs_in(raw: bytes) -> list[str]:
    """VERP references quoted in a report: the original's X-Okaeri-Ref or its Return-Path."""
    return list(dict.fromkeys(match.decode().lower() for match in _REFS.findall(raw)))


def _is_feedback(mail: Message) -> bool:
    return mail.get_content_type() == "multipart/report" and str(mail.get_param("report-type") or "").lower() == "feedback-report"


def _complaint(mail: Message) -> Report | None:
    for part in mail.walk():
        if part.get_content_type() != "message/feedback-report":
            continue
        fields = _fields_of(part)
        kind = (fields.get("Feedback-Type") or "").strip().lower()
        if kind in _COMPLAINTS:
            return Report(ReportKind.complaint, "", f"feedback-type {kind}")
        return None
    return None


def _fields_of(part: Message) -> Message:
    """The field block of a message/feedback-report part, however the parser left it."""
    payload = part.get_payload()
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        return payload[0]
    text = payload if isinstance(payload, str) else ""
    return BytesHeaderParser(policy=compat32).parsebytes(text.encode(errors="replace"))


def _dsn_failure(mail: Message) -> Report | None:
    """The worst failed recipient of a DSN: a hard one wins over a soft one."""
    worst: Report | None = None
    for part in mail.walk():
        blocks = part.get_payload() if part.get_content_type() == "message/delivery-status" else None
        if not isinstance(blocks, list):
            continue
        for block in blocks[1:]:  # the first block is about the message, the rest one per recipient
            if not isinstance(block, Message):
                continue
            if not str(block.get("Action", "")).strip().lower().startswith(("fail", "error")):
                continue
            status = str(block.get("Status", "")).strip().split(" ", 1)[0]
            status = status if _STATUS.fullmatch(status) else ""
            detail = " ".join(str(block.get("Diagnostic-Code", "")).split())
            status = _specific(status, detail)
            kind = ReportKind.hard_bounce if _HARD.fullmatch(status) else ReportKind.soft_bounce
            if worst is None or (kind == ReportKind.hard_bounce and worst.kind != kind):
                worst = Report(kind, status, detail)
    return worst


def _specific(status: str, detail: str) -> str:
    """A generic status (none, or x.0.0) made specific by the code the remote server's reply quotes,
    when that code is of the same class (a 5.0.0 whose reply says 5.1.1 is a 5.1.1)."""
    if status and not status.endswith(".0.0"):
        return status
    quoted = _STATUS.search(detail)
    if quoted is None or (status and quoted.group(0)[0] != status[0]):
        return status
    return quoted.group(0)


def _other_bounce(mail: Message) -> Report | None:
    """A bounce without a delivery-status part: flufl.bounce's detectors name permanent failures."""
    try:
        _temporary, permanent = all_failures(mail)
    except Exception:  # noqa: BLE001 - a detector choking on a strange mail means "not a bounce we can read"
        return None
    return Report(ReportKind.hard_bounce, "", "permanent failure (non-DSN bounce)") if permanent else None

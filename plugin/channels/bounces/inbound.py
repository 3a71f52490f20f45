"""One inbound report mail → its message → a kept report and, when called for, a suppression."""
from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from sqlmodel import Session

from plugin.channels.bounces.parse import read_report
from plugin.channels.verp import ReturnPath
from plugin.clock import Clock
from plugin.metrics import DELIVERY_REPORTS
from plugin.storage.delivery_reports import record_report
from plugin.storage.models import Message

__all__ = ["Inbox"]

log = logging.getLogger("okaeri.bounces")


class Inbox:
    """Where report mails land, whichever way they came (SMTP receiver, a relay's webhook)."""

    def __init__(self, sessions: Callable[[], Session], return_path: ReturnPath, clock: Clock) -> None:
        self.sessions = sessions
        self.return_path = return_path
        self.clock = clock

    def receive(self, raw: bytes, recipients: Sequence[str] = ()) -> str:
        """Handle one mail; what came of it: suppressed, recorded, duplicate, unmatched or not-a-report.

        The message is the one the first reference whose tag verifies names: the envelope
        recipient's (VERP), then those quoted inside (the original's X-Okaeri-Ref or Return-Path).
        A reference that does not verify is ignored, whatever else the mail says."""
        inbound = read_report(raw)
        if inbound is None:
            log.info("okaeri.bounces.not-a-report", extra={"size": len(raw)})
            DELIVERY_REPORTS.labels("email", "none", "not-a-report").inc()
            return "not-a-report"
        envelope = [ref for ref in (self.return_path.ref_of_address(address) for address in recipients) if ref]
        with self.sessions() as session:
            for ref in dict.fromkeys(envelope + inbound.refs):
                outbox_id = self.return_path.outbox_id(ref)
                message = session.get(Message, outbox_id) if outbox_id is not None else None
                if message is None:
                    log.warning("okaeri.bounces.bad-ref", extra={"ref": ref[:60]})
                    continue
                outcome = record_report(session, message, inbound.report, self.clock.now())
                session.commit()
                log.info("okaeri.bounces.report", extra={"shop_id": message.shop_id, "message_id": message.id,
                                                         "kind": inbound.report.kind.value, "outcome": outcome})
                DELIVERY_REPORTS.labels(message.channel, inbound.report.kind.value, outcome).inc()
                return outcome
        DELIVERY_REPORTS.labels("email", inbound.report.kind.value, "unmatched").inc()
        return "unmatched"

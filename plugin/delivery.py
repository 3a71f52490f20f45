"""Deliver one outbox message: claim, re-check, send once, settle."""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlmodel import Session

from plugin import outbox
from plugin.channels.base import OutgoingMessage, PermanentFailure, TemporaryFailure
from plugin.models import Customer, InstallState, Message, Shop, Suppression
from plugin.suppression import suppress
from scenarios import get_scenario

if TYPE_CHECKING:
    from datetime import datetime

    from plugin.runtime import Runtime

__all__ = ["deliver", "unsubscribe_url"]

log = logging.getLogger("okaeri.outbox")


def unsubscribe_url(runtime: Runtime, shop_id: int, customer_id: int, rfc_message_id: str) -> str:
    """A signed link that works without login (and for RFC 8058 one-click POST)."""
    token = runtime.signer.dumps({"s": shop_id, "c": customer_id, "m": rfc_message_id}, "unsubscribe")
    return f"{runtime.settings.base_url}/u/{token}"


def deliver(runtime: Runtime, message_id: int) -> tuple[str, datetime | None]:
    """Return (outcome, retry_at); outcome is sent, skipped, cancelled, retry or failed."""
    now = runtime.clock.now()
    with runtime.sessions() as session:
        message = outbox.claim(session, message_id, now)
        if message is None:
            return "skipped", None
        outgoing, reason = _prepare(runtime, session, message)
        if outgoing is None:
            outbox.cancel(session, message_id, reason)
            return "cancelled", None
        try:
            runtime.email.send(outgoing)
        except TemporaryFailure as exc:
            retry_at = outbox.mark_retry(session, message, runtime.clock.now(), str(exc))
            return ("retry" if retry_at else "failed"), retry_at
        except PermanentFailure as exc:
            outbox.mark_failed(session, message_id, str(exc))
            suppress(session, message.shop_id, message.channel, message.to_address, "bounced", now)
            session.commit()
            return "failed", None
        outbox.mark_sent(session, message_id, runtime.clock.now())
        log.info("okaeri.outbox.sent", extra={"shop_id": message.shop_id, "message_id": message_id})
        return "sent", None


def _prepare(runtime: Runtime, session: Session, message: Message) -> tuple[OutgoingMessage | None, str]:
    shop = session.get(Shop, message.shop_id)
    if shop is None or shop.state != InstallState.active:
        return None, "shop is not active"
    suppressed = session.execute(
        select(Suppression.id).where(
            Suppression.shop_id == message.shop_id,
            Suppression.channel == message.channel,
            Suppression.address == message.to_address,
        )
    ).first()
    customer = session.get(Customer, message.customer_id)
    if suppressed or customer is None or not customer.email_consent:
        return None, "suppressed or no consent"
    if not get_scenario(message.scenario_key).still_wanted(session, message):
        return None, "exit condition met before delivery"
    return OutgoingMessage(
        message_id=message.rfc_message_id,
        to_address=message.to_address,
        to_name=customer.name,
        from_name=shop.name,
        subject=message.subject,
        body_text=message.body_text,
        body_html=message.body_html,
        unsubscribe_url=unsubscribe_url(runtime, message.shop_id, message.customer_id, message.rfc_message_id),
    ), ""

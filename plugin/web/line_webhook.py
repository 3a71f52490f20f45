"""LINE's webhook for one account: the signature over the raw body (constant time), one handling
per `webhookEventId`, and a handler per event type:

    follow     added as a friend or unblocked (`follow.isUnblocked`): the link reaches them again
    unfollow   blocked: the link stops, the address is suppressed, waiting messages go by the
               scenario's own channel
    message    a text carrying a link code (OKAERI-XXXXXXXXXX): links this LINE user (plugin.channels.line_links)
    postback   a survey button (okaeri-survey=<token>&score=<n>): the answer, as the mail's buttons record it

Unknown events are acknowledged and ignored.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from sqlmodel import Session

from plugin.channels.line_links import CODE_PATTERN, link_of, redeem_code, set_following
from plugin.channels.line_messages import SURVEY_DATA
from plugin.engine.reroute import reroute_waiting
from plugin.measurement.surveys import SCORES, belongs, read_survey_token, record_form
from plugin.runtime import Runtime
from plugin.storage.models import LineAccount, WebhookReceipt
from plugin.storage.upsert import insert_ignore, table_of

__all__ = ["valid_signature", "handle_events", "BadWebhook"]

log = logging.getLogger("okaeri.line")
RECEIPTS = "line"  # WebhookReceipt.platform of LINE's events


class BadWebhook(ValueError):
    """The body is not LINE's webhook JSON."""


def valid_signature(secret: str, body: bytes, header: str) -> bool:
    expected = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
    return hmac.compare_digest(expected.encode(), header.encode())


def handle_events(runtime: Runtime, session: Session, account: LineAccount, body: bytes) -> dict[str, int]:
    """Handle each new event of a verified body; counts by outcome (handled, duplicate, ignored)."""
    try:
        events = json.loads(body).get("events", [])
    except (ValueError, AttributeError, RecursionError) as exc:
        raise BadWebhook("not a JSON object with events") from exc
    if not isinstance(events, list):
        raise BadWebhook("events is not a list")
    counts = {"handled": 0, "duplicate": 0, "ignored": 0}
    for event in events:
        if not isinstance(event, dict):
            counts["ignored"] += 1
            continue
        if not _first_time(runtime, session, event):
            counts["duplicate"] += 1
            continue
        handler = HANDLERS.get(str(event.get("type")))
        user_id = str(_dict(event.get("source")).get("userId") or "")
        if handler is None or not user_id:
            counts["ignored"] += 1
            continue
        handler(runtime, session, account, user_id, event)
        counts["handled"] += 1
    return counts


def _dict(value: Any) -> dict[str, Any]:
    """A JSON object of the event, or {} when the sender put anything else there."""
    return value if isinstance(value, dict) else {}


def _first_time(runtime: Runtime, session: Session, event: dict[str, Any]) -> bool:
    event_id = str(event.get("webhookEventId") or "")
    if not event_id:
        return True  # nothing to dedupe on (LINE always sends one)
    inserted = insert_ignore(session, table_of(WebhookReceipt), [{
        "platform": RECEIPTS, "delivery_key": event_id[:255], "topic": str(event.get("type"))[:64],
        "received_at": runtime.clock.now()}], ["platform", "delivery_key"])
    session.commit()
    return bool(inserted)


def _follow(runtime: Runtime, session: Session, account: LineAccount, user_id: str, event: dict[str, Any]) -> None:
    link = set_following(session, account, user_id, True, runtime.clock.now())
    unblocked = bool(_dict(event.get("follow")).get("isUnblocked"))
    log.info("okaeri.line.follow", extra={"account_id": account.id, "linked": link is not None, "unblocked": unblocked})


def _unfollow(runtime: Runtime, session: Session, account: LineAccount, user_id: str, event: dict[str, Any]) -> None:
    link = set_following(session, account, user_id, False, runtime.clock.now())
    if link is not None:
        reroute_waiting(session, runtime.channels, account.shop_id, link.customer_id, "line", "blocked")


def _message(runtime: Runtime, session: Session, account: LineAccount, user_id: str, event: dict[str, Any]) -> None:
    message = _dict(event.get("message"))
    match = CODE_PATTERN.search(str(message.get("text", ""))) if message.get("type") == "text" else None
    if match is not None:
        outcome = redeem_code(session, account, user_id, match.group(1), runtime.clock.now())
        log.info("okaeri.line.link-code", extra={"account_id": account.id, "outcome": outcome.value})


def _postback(runtime: Runtime, session: Session, account: LineAccount, user_id: str, event: dict[str, Any]) -> None:
    fields = parse_qs(str(_dict(event.get("postback")).get("data", ""))[:1000])
    token, score = (fields.get(SURVEY_DATA) or [""])[0], (fields.get("score") or [""])[0]
    link = read_survey_token(runtime, token)
    if link is None or not score.isdigit() or int(score) not in SCORES or not link.message_id:
        return
    mine = link_of(session, account.id or 0, user_id)  # only the customer the survey was sent to answers it
    if mine is None or mine.customer_id != link.customer_id or account.shop_id != link.shop_id or not belongs(session, link):
        return
    record_form(session, link, int(score), "", runtime.clock.now())  # a tap inside LINE is deliberate: confirmed


HANDLERS: dict[str, Callable[[Runtime, Session, LineAccount, str, dict[str, Any]], None]] = {
    "follow": _follow, "unfollow": _unfollow, "message": _message, "postback": _postback,
}

"""Open pixel and signed click redirects; conversions attributed to the last click."""
from __future__ import annotations

import re
from datetime import datetime, timedelta
from functools import lru_cache
from urllib.parse import quote, urlsplit, urlunsplit

from sqlalchemy import and_, select
from sqlmodel import Session, col

from plugin.clock import as_utc
from plugin.crypto import BadSignature
from plugin.runtime import Runtime
from plugin.storage.models import Conversion, Message, MessageEvent, Order
from plugin.storage.rollup import count_conversions
from plugin.storage.upsert import insert_ignore, table_of

__all__ = ["click_url", "valid_click", "open_url", "valid_open", "unsubscribe_token", "read_unsubscribe_token",
           "visitor_proof", "read_visitor_proof", "with_visitor_proof", "attribute_orders",
           "ATTRIBUTION_WINDOW", "VISITOR_PROOF_PARAM", "VISITOR_PROOF_TTL"]

ATTRIBUTION_WINDOW = timedelta(days=5)  # after a click (Klaviyo's default, last touch)
_UNSUBSCRIBE = re.compile(r"(\d+)\.(\d+)\.(\d+)\.([A-Za-z0-9_-]{22})")
# A click on Okaeri's own mail link proves to the shop's storefront script who the visitor is; the
# proof rides on the landing URL (the script stores it first-party and sends it with its events).
VISITOR_PROOF_PARAM = "okaeri_proof"
VISITOR_PROOF_TTL = timedelta(hours=1)
_VISITOR_PROOF = re.compile(r"v1\.(\d{1,18})\.(\d{1,18})\.(\d{1,12})\.([A-Za-z0-9_-]{22})")


@lru_cache(maxsize=4096)
def _quoted(url: str) -> str:
    """A target URL as a query value; the same product links recur in every mail of a batch."""
    return quote(url, safe="")


def click_url(runtime: Runtime, message_id: int, url: str) -> str:
    """A redirect that records the click; the (message, target) pair is signed, so the link
    cannot be turned into an open redirect."""
    if not url:
        return url
    tag = runtime.signer.mac(f"{message_id}\n{url}", "click")
    return f"{runtime.settings.base_url}/t/c/{message_id}/{tag}?u={_quoted(url)}"


def valid_click(runtime: Runtime, message_id: int, tag: str, url: str) -> bool:
    return runtime.signer.verify_mac(f"{message_id}\n{url}", tag, "click")


def open_url(runtime: Runtime, message_id: int) -> str:
    return f"{runtime.settings.base_url}/t/o/{message_id}/{runtime.signer.mac(str(message_id), 'open')}.gif"


def valid_open(runtime: Runtime, message_id: int, tag: str) -> bool:
    return runtime.signer.verify_mac(str(message_id), tag, "open")


def unsubscribe_token(runtime: Runtime, shop_id: int, customer_id: int, message_id: int | None) -> str:
    """`shop.customer.message.tag`: names whom to unsubscribe, signed (a 128-bit HMAC like the
    click links: one per mail, so it must be cheap). Message 0 means "not from a message"."""
    body = f"{shop_id}.{customer_id}.{message_id or 0}"
    return f"{body}.{runtime.signer.mac(body, 'unsubscribe')}"


def read_unsubscribe_token(runtime: Runtime, token: str) -> dict[str, int | None] | None:
    """{"s": shop, "c": customer, "m": message or None} from a valid token, else None.

    Also reads the older itsdangerous tokens, so every unsubscribe link ever sent keeps working.
    """
    match = _UNSUBSCRIBE.fullmatch(token)
    if match:
        shop, customer, message, tag = match.groups()
        if not runtime.signer.verify_mac(f"{shop}.{customer}.{message}", tag, "unsubscribe"):
            return None
        return {"s": int(shop), "c": int(customer), "m": int(message) or None}
    try:
        value = runtime.signer.loads(token, "unsubscribe")
    except BadSignature:
        return None
    if not isinstance(value, dict) or not all(isinstance(value.get(k), int) for k in ("s", "c")):
        return None
    return {"s": value["s"], "c": value["c"], "m": value["m"] if isinstance(value.get("m"), int) else None}


def visitor_proof(runtime: Runtime, shop_id: int, customer_id: int, now: datetime) -> str:
    """`v1.shop.customer.expires.tag`: a short-lived, signed "this visitor came from this
    customer's mail"; only Okaeri can make one."""
    body = f"v1.{shop_id}.{customer_id}.{int((now + VISITOR_PROOF_TTL).timestamp())}"
    return f"{body}.{runtime.signer.mac(body, 'visitor')}"


def read_visitor_proof(runtime: Runtime, token: str, shop_id: int, now: datetime) -> int | None:
    """The customer id a valid, unexpired proof for this shop names, else None."""
    match = _VISITOR_PROOF.fullmatch(token)
    if match is None:
        return None
    shop, customer, expires, tag = match.groups()
    if not runtime.signer.verify_mac(f"v1.{shop}.{customer}.{expires}", tag, "visitor"):
        return None
    if int(shop) != shop_id or int(expires) < now.timestamp():
        return None
    return int(customer)


def with_visitor_proof(url: str, proof: str) -> str:
    """`url` with the proof appended to its query; the rest of the URL is kept byte for byte."""
    parts = urlsplit(url)
    query = f"{parts.query}&" if parts.query else ""
    return urlunsplit(parts._replace(query=f"{query}{VISITOR_PROOF_PARAM}={quote(proof, safe='')}"))


def attribute_orders(session: Session, shop_id: int, now: datetime, lookback: timedelta = timedelta(days=30)) -> int:
    """Attribute each recent order not yet attributed to the customer's last click within the
    window before it. An order is attributed at most once (unique order_id)."""
    pairs = session.execute(
        select(col(Order.id), col(Order.ordered_at), col(Order.total), col(Message.id), col(Message.scenario_key),
               col(MessageEvent.occurred_at))
        .join(Message, and_(col(Message.shop_id) == Order.shop_id, col(Message.customer_id) == Order.customer_id))
        .join(MessageEvent, and_(col(MessageEvent.message_id) == Message.id, col(MessageEvent.kind) == "click"))
        .where(col(Order.shop_id) == shop_id, col(Order.canceled).is_(False), col(Order.ordered_at) > now - lookback,
               col(MessageEvent.occurred_at) <= Order.ordered_at,
               ~select(col(Conversion.id)).where(col(Conversion.order_id) == Order.id).exists())
        .order_by(col(Order.id), col(MessageEvent.occurred_at).desc(), col(MessageEvent.id).desc())
    ).all()
    chosen: dict[int, dict[str, object]] = {}
    for order_id, ordered_at, total, message_id, scenario_key, clicked_at in pairs:
        if order_id in chosen or as_utc(ordered_at) - as_utc(clicked_at) > ATTRIBUTION_WINDOW:
            continue  # the first row per order is its last click; older clicks never count
        chosen[order_id] = {"shop_id": shop_id, "order_id": order_id, "message_id": message_id,
                            "scenario_key": scenario_key, "revenue": total, "ordered_at": ordered_at}
    inserted = insert_ignore(session, table_of(Conversion), list(chosen.values()), ["order_id"])
    count_conversions(session, inserted)
    session.commit()
    return len(inserted)

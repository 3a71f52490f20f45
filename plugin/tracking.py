"""Open pixel and signed click redirects; conversions attributed to the last click."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import and_, func, select
from sqlmodel import Session

from plugin.models import Conversion, Message, MessageEvent, Order
from plugin.upsert import insert_ignore

if TYPE_CHECKING:
    from plugin.runtime import Runtime

__all__ = ["click_url", "open_url", "attribute_orders", "ATTRIBUTION_WINDOW"]

ATTRIBUTION_WINDOW = timedelta(days=5)  # after a click (Klaviyo's default, last touch)


def click_url(runtime: Runtime, message_id: int, url: str) -> str:
    """A redirect that records the click; signed so it cannot be turned into an open redirect."""
    if not url:
        return url
    token = runtime.signer.dumps({"m": message_id, "u": url}, "click")
    return f"{runtime.settings.base_url}/t/c/{token}"


def open_url(runtime: Runtime, message_id: int) -> str:
    return f"{runtime.settings.base_url}/t/o/{runtime.signer.dumps(message_id, 'open')}.gif"


def attribute_orders(session: Session, shop_id: int, now: datetime) -> int:
    """Attribute each order not yet attributed to the customer's last click within the window
    before it. One set-based pass; an order is attributed at most once (unique order_id)."""
    last_click = (
        select(Order.id.label("order_id"), func.max(MessageEvent.occurred_at).label("clicked_at"))
        .join(Message, and_(Message.shop_id == Order.shop_id, Message.customer_id == Order.customer_id))
        .join(MessageEvent, and_(MessageEvent.message_id == Message.id, MessageEvent.kind == "click"))
        .where(Order.shop_id == shop_id, Order.canceled.is_(False),  # type: ignore[attr-defined]
               MessageEvent.occurred_at <= Order.ordered_at,  # type: ignore[operator]
               MessageEvent.occurred_at > Order.ordered_at - ATTRIBUTION_WINDOW,  # type: ignore[operator]
               ~select(Conversion.id).where(Conversion.order_id == Order.id).exists())
        .group_by(Order.id).subquery()
    )
    rows = session.execute(
        select(Order.id, Message.id, Message.scenario_key, Order.total, Order.ordered_at, MessageEvent.id)
        .join(last_click, last_click.c.order_id == Order.id)
        .join(Message, and_(Message.shop_id == Order.shop_id, Message.customer_id == Order.customer_id))
        .join(MessageEvent, and_(MessageEvent.message_id == Message.id, MessageEvent.kind == "click",
                                 MessageEvent.occurred_at == last_click.c.clicked_at))
        .order_by(Order.id, MessageEvent.id.desc())  # type: ignore[union-attr]
    ).all()
    chosen: dict[int, dict[str, object]] = {}
    for order_id, message_id, scenario_key, total, ordered_at, _ in rows:
        chosen.setdefault(order_id, {"shop_id": shop_id, "order_id": order_id, "message_id": message_id,
                                     "scenario_key": scenario_key, "revenue": total, "ordered_at": ordered_at})
    inserted = insert_ignore(session, Conversion.__table__, list(chosen.values()), ["order_id"])  # type: ignore[arg-type]
    session.commit()
    return len(inserted)

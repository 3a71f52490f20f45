"""The post-purchase survey: a 0–10 "would you recommend us" question answered with one click.

Each of the eleven buttons is a signed link `/s/{token}/{score}`; the token names the shop, the
customer, the message and the order (a 128-bit HMAC like the click links), so nobody can answer
for someone else, and the thank-you page's comment form carries the same token (no cookie, no
CSRF token needed). The score is the customer's choice among the eleven, so it is not signed; a
score outside 0–10 is refused.

Mail scanners prefetch links, so a GET is not a deliberate answer:
- a click (GET) records the score, and a later click on another score of the same mail updates
  it, as long as the answer is unconfirmed (a scanner that fetches every button leaves whatever it
  fetched last, and the customer's own click, which comes later, replaces it);
- posting the thank-you page's form (the comment, or just "send") confirms the answer: from then
  on a click shows the answer and changes nothing; only another post changes it.
There is never more than one answer per mail (unique message_id; concurrent clicks cannot race).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlmodel import Session, col

from plugin.measurement.nps import nps_summary
from plugin.runtime import Runtime
from plugin.storage.models import Customer, Message, Order, OrderLine, Product, Shop, SurveyAnswer, SurveyAnswerGroup
from plugin.storage.upsert import insert_ignore, table_of

__all__ = ["SCORES", "MAX_COMMENT", "SurveyLink", "survey_token", "read_survey_token", "survey_links", "group_of",
           "record_click", "record_form", "answer_for", "belongs", "nps_summary"]

SCORES = range(11)
MAX_COMMENT = 2000
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # PostgreSQL refuses NUL in text; none belongs in a comment
_TOKEN = re.compile(r"s1\.(\d{1,18})\.(\d{1,18})\.(\d{1,18})\.(\d{1,18})\.([A-Za-z0-9_-]{22})")


@dataclass(frozen=True)
class SurveyLink:
    """Whom a valid survey token names; message 0 is a preview or test send (records nothing)."""

    shop_id: int
    customer_id: int
    message_id: int
    order_id: int


def survey_token(runtime: Runtime, shop_id: int, customer_id: int, message_id: int, order_id: int) -> str:
    """`s1.shop.customer.message.order.tag`."""
    body = f"s1.{shop_id}.{customer_id}.{message_id}.{order_id}"
    return f"{body}.{runtime.signer.mac(body, 'survey')}"


def read_survey_token(runtime: Runtime, token: str) -> SurveyLink | None:
    """The link a valid token names, else None (forged, tampered or malformed)."""
    match = _TOKEN.fullmatch(token)
    if match is None:
        return None
    shop, customer, message, order, tag = match.groups()
    if not runtime.signer.verify_mac(f"s1.{shop}.{customer}.{message}.{order}", tag, "survey"):
        return None
    return SurveyLink(int(shop), int(customer), int(message), int(order))


def survey_links(runtime: Runtime, shop_id: int, message: Message) -> list[dict[str, object]]:
    """The eleven buttons of one survey mail: score and signed URL. A post-purchase message's
    trigger is its order; a preview (no message id) gets links that record nothing."""
    order_id = message.trigger_ref if message.trigger_kind == "post" and message.trigger_ref else 0
    token = survey_token(runtime, shop_id, message.customer_id, message.id or 0, order_id)
    base = runtime.settings.base_url
    return [{"score": score, "url": f"{base}/s/{token}/{score}"} for score in SCORES]


def group_of(session: Session, shop_id: int, product_id: int) -> str:
    """The product group an answer about this product counts in: the product's group code (kept by
    the shop's product-code grouping rules, /app/rules), or the product's own id when it has none —
    the same grouping the post-purchase steps use."""
    group = session.execute(select(col(Product.group_code)).where(
        col(Product.id) == product_id, col(Product.shop_id) == shop_id)).scalar_one_or_none()
    return group or str(product_id)


def answer_for(session: Session, link: SurveyLink) -> SurveyAnswer | None:
    """The stored answer to the link's mail, if any."""
    return session.execute(select(SurveyAnswer).where(col(SurveyAnswer.message_id) == link.message_id,
                                                      col(SurveyAnswer.shop_id) == link.shop_id)).scalars().first()


def belongs(session: Session, link: SurveyLink) -> bool:
    """The shop, customer, message and order still exist and belong together."""
    message = session.get(Message, link.message_id)
    customer = session.get(Customer, link.customer_id)
    if message is None or customer is None or session.get(Shop, link.shop_id) is None:
        return False
    if (message.shop_id, message.customer_id, customer.shop_id) != (link.shop_id, link.customer_id, link.shop_id):
        return False
    order = session.get(Order, link.order_id) if link.order_id else None
    return not link.order_id or (order is not None and order.shop_id == link.shop_id)


def record_click(session: Session, link: SurveyLink, score: int, now: datetime) -> SurveyAnswer:
    """A click on a score: the first one stores the answer, later ones update it until it is confirmed."""
    if not _insert_answer(session, link, score, now, confirmed=False):
        session.execute(update(SurveyAnswer).where(
            col(SurveyAnswer.message_id) == link.message_id, col(SurveyAnswer.confirmed_at).is_(None),
            col(SurveyAnswer.score) != score).values(score=score, updated_at=now))
    session.commit()
    return _reloaded(session, link)


def record_form(session: Session, link: SurveyLink, score: int, comment: str, now: datetime) -> SurveyAnswer:
    """The thank-you page's form: the score (as chosen there) and the comment, confirmed."""
    comment = _CONTROL.sub("", comment).strip()[:MAX_COMMENT]
    if not _insert_answer(session, link, score, now, confirmed=True, comment=comment):
        values: dict[str, object] = {"score": score, "updated_at": now, "confirmed_at": now}
        if comment:
            values.update(comment=comment, commented_at=now)
        session.execute(update(SurveyAnswer).where(col(SurveyAnswer.message_id) == link.message_id).values(**values))
    session.commit()
    return _reloaded(session, link)


def _insert_answer(session: Session, link: SurveyLink, score: int, now: datetime, *, confirmed: bool,
                   comment: str = "") -> bool:
    """Insert the answer and its product groups unless the mail has one; True if this call inserted it."""
    row = {"shop_id": link.shop_id, "customer_id": link.customer_id, "order_id": link.order_id or None,
           "message_id": link.message_id, "score": score, "comment": comment, "answered_at": now, "updated_at": now,
           "confirmed_at": now if confirmed else None, "commented_at": now if comment else None}
    inserted = insert_ignore(session, table_of(SurveyAnswer), [row], ["message_id"])
    if not inserted:
        return False
    groups = _order_groups(session, link)
    insert_ignore(session, table_of(SurveyAnswerGroup),
                  [{"shop_id": link.shop_id, "answer_id": inserted[0], "group_key": key, "product_id": product_id}
                   for key, product_id in groups.items()], ["answer_id", "group_key"])
    return True


def _order_groups(session: Session, link: SurveyLink) -> dict[str, int]:
    """{group key: one product of it} for the products of the link's order."""
    if not link.order_id:
        return {}
    product_ids = session.execute(select(col(OrderLine.product_id)).where(
        col(OrderLine.order_id) == link.order_id, col(OrderLine.shop_id) == link.shop_id,
        col(OrderLine.product_id).is_not(None)).distinct()).scalars()
    groups: dict[str, int] = {}
    for product_id in sorted(p for p in product_ids if p is not None):
        groups.setdefault(group_of(session, link.shop_id, product_id), product_id)
    return groups


def _reloaded(session: Session, link: SurveyLink) -> SurveyAnswer:
    answer = answer_for(session, link)
    assert answer is not None  # inserted or updated just now
    session.refresh(answer)
    return answer

"""The guards every scenario passes, in order, before anything reaches the outbox.

1. consent and suppression: only customers who opted in to email; the suppression list wins;
2. idempotency: a (shop, scenario, customer, trigger) already in the outbox is not written again.
Each gate is one query over the whole candidate set, never one per customer.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlmodel import Session

from plugin.models import Customer, Message, Shop, Suppression
from scenarios.base import Candidate, Scenario

__all__ = ["apply_gates", "idempotency_key"]

CHUNK = 900  # stay under SQLite's bound-parameter limit


def _chunks(values: list[object]) -> list[list[object]]:
    return [values[i:i + CHUNK] for i in range(0, len(values), CHUNK)]


def consent_and_suppression(session: Session, shop: Shop, candidates: list[Candidate]) -> list[Candidate]:
    consenting: set[int] = set()
    suppressed: set[str] = set()
    for chunk in _chunks([c.customer_id for c in candidates]):
        consenting.update(session.execute(select(Customer.id).where(
            Customer.shop_id == shop.id, Customer.id.in_(chunk), Customer.email_consent.is_(True),  # type: ignore[union-attr,attr-defined]
            Customer.email != "")).scalars())
    for chunk in _chunks([c.email for c in candidates]):
        suppressed.update(session.execute(select(Suppression.address).where(
            Suppression.shop_id == shop.id, Suppression.channel == "email",
            Suppression.address.in_(chunk))).scalars())  # type: ignore[attr-defined]
    return [c for c in candidates if c.customer_id in consenting and c.email not in suppressed]


def idempotency_key(shop_id: int | None, scenario_key: str, candidate: Candidate) -> str:
    """One message per shop, scenario, customer and trigger, ever."""
    return f"{shop_id}:{scenario_key}:{candidate.customer_id}:{candidate.trigger_key}"


def not_yet_written(session: Session, shop: Shop, scenario: Scenario, candidates: list[Candidate]) -> list[Candidate]:
    keys = {idempotency_key(shop.id, scenario.key, c): c for c in candidates}
    existing: set[str] = set()
    for chunk in _chunks(list(keys)):
        existing.update(session.execute(
            select(Message.idempotency_key).where(Message.idempotency_key.in_(chunk))).scalars())  # type: ignore[attr-defined]
    return [c for key, c in keys.items() if key not in existing]


def apply_gates(session: Session, shop: Shop, scenario: Scenario, candidates: list[Candidate],
                now: datetime) -> list[Candidate]:
    """Run the gates in their fixed order; what survives may be written."""
    candidates = consent_and_suppression(session, shop, candidates)
    return not_yet_written(session, shop, scenario, candidates)

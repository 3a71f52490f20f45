"""Who a storefront visitor speaks for: binding a browser's visitor id to one customer, as far as
the proof it brings allows.

- A signed proof (the token Okaeri's own mail link hands the shop's script) binds the visitor to
  that customer, replacing what the page alone had vouched for.
- The platform page's claim (e.g. ColorMe's logged-in customer id, which any script can post)
  binds a customer to the first visitor that claims it, if that visitor speaks for nobody else,
  and speaks only while the page still shows that customer; a claim from any other visitor
  changes nothing. New page bindings per shop and
  hour are budgeted, so a stranger walking through sequential ids binds few customers.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, exists, func, select
from sqlalchemy.orm import aliased
from sqlmodel import Session, col

from connectors.storefront import StorefrontEvent
from plugin.storage.models import Customer, Proof, Shop, VisitorBinding
from plugin.storage.upsert import table_of, upsert

__all__ = ["Speaker", "speaker_for", "page_binding_budget", "BUDGET_WINDOW"]

BUDGET_WINDOW = timedelta(hours=1)
MIN_PAGE_BINDINGS = 100  # per shop and hour, however small the shop
PAGE_BINDINGS_PER_CUSTOMERS = 20  # … or one per this many customers, for large shops


@dataclass(frozen=True)
class Speaker:
    """The customer a visitor's event may act for, and how well that is proven."""

    customer_id: int
    external_id: str
    proof: Proof


def speaker_for(session: Session, shop: Shop, event: StorefrontEvent, proven_customer_id: int | None,
                now: datetime) -> Speaker | None:
    """The customer this event speaks for, binding the visitor where its proof allows; None: nobody."""
    if proven_customer_id is not None:
        bound = _bind_by_link(session, shop, event.visitor_id, proven_customer_id, now)
        if bound is None or event.customer_id not in ("", bound.external_id):
            return None  # the page shows someone else logged in: the basket is not the proven customer's
        return bound
    current = _current(session, shop, event.visitor_id)
    if current is not None:  # a page binding speaks only while the page still shows its customer
        logged_out = "" if current.proof == Proof.link else None
        return current if event.customer_id in (logged_out, current.external_id) else None
    return _bind_by_page(session, shop, event, now) if event.customer_id else None


def _current(session: Session, shop: Shop, visitor_id: str) -> Speaker | None:
    """The visitor's binding, if it still speaks: a page binding only while it is its customer's first."""
    earlier = aliased(VisitorBinding)  # two visitors who raced for one customer: the first wins
    row = session.execute(
        select(col(VisitorBinding.customer_id), col(Customer.external_id), col(VisitorBinding.proof))
        .join(Customer, col(Customer.id) == col(VisitorBinding.customer_id))
        .where(col(VisitorBinding.shop_id) == shop.id, col(VisitorBinding.visitor_id) == visitor_id,
               (col(VisitorBinding.proof) == Proof.link) | ~exists().where(
                   col(earlier.shop_id) == col(VisitorBinding.shop_id),
                   col(earlier.customer_id) == col(VisitorBinding.customer_id), col(earlier.id) < col(VisitorBinding.id)))
    ).first()
    return Speaker(row[0], row[1], Proof(row[2])) if row else None


def _bind_by_link(session: Session, shop: Shop, visitor_id: str, customer_id: int, now: datetime) -> Speaker | None:
    customer = session.get(Customer, customer_id)
    if customer is None or customer.shop_id != shop.id:
        return None
    _save(session, shop, visitor_id, customer_id, Proof.link, now)
    # Browsers only the page vouched for stop speaking for this customer (a squatter among them).
    session.execute(delete(VisitorBinding).where(
        col(VisitorBinding.shop_id) == shop.id, col(VisitorBinding.customer_id) == customer_id,
        col(VisitorBinding.proof) == Proof.page, col(VisitorBinding.visitor_id) != visitor_id))
    return Speaker(customer_id, customer.external_id, Proof.link)


def _bind_by_page(session: Session, shop: Shop, event: StorefrontEvent, now: datetime) -> Speaker | None:
    customer_id = session.execute(select(col(Customer.id)).where(
        col(Customer.shop_id) == shop.id, col(Customer.external_id) == event.customer_id)).scalar_one_or_none()
    if customer_id is None:
        return None
    taken = session.execute(select(col(VisitorBinding.id)).where(
        col(VisitorBinding.shop_id) == shop.id, (col(VisitorBinding.customer_id) == customer_id)
        | (col(VisitorBinding.visitor_id) == event.visitor_id)).limit(1)).first()
    if taken is not None or _page_bindings_since(session, shop, now - BUDGET_WINDOW) >= page_binding_budget(session, shop):
        return None
    _save(session, shop, event.visitor_id, customer_id, Proof.page, now)
    return Speaker(customer_id, event.customer_id, Proof.page)


def page_binding_budget(session: Session, shop: Shop) -> int:
    """How many customers the page alone may bind per hour in this shop."""
    customers = session.execute(select(func.count()).select_from(Customer).where(col(Customer.shop_id) == shop.id)).scalar()
    return max(MIN_PAGE_BINDINGS, (customers or 0) // PAGE_BINDINGS_PER_CUSTOMERS)


def _page_bindings_since(session: Session, shop: Shop, since: datetime) -> int:
    return session.execute(select(func.count()).select_from(VisitorBinding).where(
        col(VisitorBinding.shop_id) == shop.id, col(VisitorBinding.proof) == Proof.page,
        col(VisitorBinding.bound_at) > since)).scalar() or 0


def _save(session: Session, shop: Shop, visitor_id: str, customer_id: int, proof: Proof, now: datetime) -> None:
    upsert(session, table_of(VisitorBinding), [{"shop_id": shop.id, "visitor_id": visitor_id, "customer_id": customer_id,
                                                "proof": proof.value, "bound_at": now}],
           ["shop_id", "visitor_id"], ["customer_id", "proof", "bound_at"])

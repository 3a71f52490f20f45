"""Buyers without an account (guests), and members who register with a guest's email.

A guest becomes a customer of the shop keyed by email (`guest_external_id`): one row per address
and shop, never shared with another shop. A guest order whose email belongs to a member of the
same shop goes to the member. When a member with a guest's email arrives, the member takes the
guest's row over in place (its orders, carts, messages and consent records stay attached); if
the member already has a row of their own, the guest's orders move to it and the guest row is
closed (`deleted_at`), so nobody is messaged twice.
"""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import func, select, update
from sqlmodel import Session, col

from connectors.base import CustomerRecord, guest_external_id
from plugin.storage.models import Customer, Order

__all__ = ["members_by_email", "without_members", "adopt_guest_rows", "latest_per_key"]


def members_by_email(session: Session, shop_id: int, emails: Iterable[str]) -> dict[str, int]:
    """The shop's live member rows by lower-cased email (the oldest row when two share one)."""
    wanted = {email.strip().lower() for email in emails if email.strip()}
    if not wanted:
        return {}
    rows = session.execute(
        select(func.lower(col(Customer.email)), func.min(col(Customer.id))).where(
            col(Customer.shop_id) == shop_id, col(Customer.is_guest).is_(False), col(Customer.deleted_at).is_(None),
            func.lower(col(Customer.email)).in_(wanted)).group_by(func.lower(col(Customer.email)))).all()
    return {email: customer_id for email, customer_id in rows}


def without_members(session: Session, shop_id: int, guests: list[CustomerRecord]) -> list[CustomerRecord]:
    """The guests whose email no member of the shop has (those are the member's)."""
    members = members_by_email(session, shop_id, (g.email for g in guests))
    return [g for g in guests if g.email.strip().lower() not in members]


def latest_per_key(records: Iterable[CustomerRecord]) -> list[CustomerRecord]:
    """One record per external id, the latest: one upsert may not touch a row twice."""
    latest: dict[str, CustomerRecord] = {}
    for record in records:
        known = latest.get(record.external_id)
        if known is None or record.updated_at >= known.updated_at:
            latest[record.external_id] = record
    return list(latest.values())


def adopt_guest_rows(session: Session, shop_id: int, members: list[CustomerRecord], now: datetime) -> set[int]:
    """Members whose email a guest row holds take it over; returns the member rows that got a guest's orders."""
    by_key = {guest_external_id(m.email): m.external_id for m in members if m.email and not m.is_guest}
    moved: set[int] = set()
    if not by_key:
        return moved
    guests = dict(session.execute(select(col(Customer.external_id), col(Customer.id)).where(
        col(Customer.shop_id) == shop_id, col(Customer.is_guest).is_(True), col(Customer.deleted_at).is_(None),
        col(Customer.external_id).in_(by_key))).tuples().all())
    if not guests:
        return moved
    own = dict(session.execute(select(col(Customer.external_id), col(Customer.id)).where(
        col(Customer.shop_id) == shop_id, col(Customer.external_id).in_([by_key[k] for k in guests]))).tuples().all())
    for key, guest_id in guests.items():
        member_id = own.get(by_key[key])
        if member_id is None:  # the row becomes the member's: everything attached to it stays
            session.execute(update(Customer).where(col(Customer.id) == guest_id)
                            .values(external_id=by_key[key], is_guest=False))
        else:
            session.execute(update(Order).where(col(Order.shop_id) == shop_id, col(Order.customer_id) == guest_id)
                            .values(customer_id=member_id))
            session.execute(update(Customer).where(col(Customer.id) == guest_id).values(deleted_at=now))
            moved.add(member_id)
    return moved

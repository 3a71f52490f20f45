"""Which storefront visitor (a browser's random first-party id) speaks for which customer, and how
that was proven: the page's own claim (weak, first visitor only) or Okaeri's signed mail link."""
from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Index, String, UniqueConstraint
from sqlmodel import Field, SQLModel

__all__ = ["Proof", "VisitorBinding"]


class Proof(StrEnum):
    """How strongly a visitor is known to be a customer (weakest first)."""

    page = "page"  # the platform's page said so (e.g. ColorMe's logged-in customer id): first visitor only
    link = "link"  # the visitor came from a signed link in one of this customer's own messages


class VisitorBinding(SQLModel, table=True):
    """One visitor speaks for one customer; a customer may have several visitors proven by link."""

    __tablename__ = "visitor_bindings"
    __table_args__ = (
        UniqueConstraint("shop_id", "visitor_id"),
        Index("ix_visitor_bindings_shop_customer", "shop_id", "customer_id"),
        Index("ix_visitor_bindings_shop_bound", "shop_id", "bound_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    shop_id: int = Field(foreign_key="shops.id")
    visitor_id: str = Field(max_length=64)
    customer_id: int = Field(foreign_key="customers.id")
    proof: Proof = Field(sa_type=String(8))
    bound_at: datetime

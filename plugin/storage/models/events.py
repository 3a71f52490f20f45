"""Storefront behaviour: carts (from basket events or checkouts) and product views."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel


class Cart(SQLModel, table=True):
    """An identified customer's current cart; `updated_at` is the last change to its items."""

    __tablename__ = "carts"
    __table_args__ = (
        UniqueConstraint("shop_id", "external_key"),
        Index("ix_carts_shop_updated", "shop_id", "updated_at"),
        Index("ix_carts_shop_customer", "shop_id", "customer_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    shop_id: int = Field(foreign_key="shops.id")
    external_key: str = Field(max_length=255)
    customer_id: int = Field(foreign_key="customers.id")
    recovery_url: str = Field(default="", max_length=1000)  # built from the shop's URL, never from an event
    # "storefront": kept from the visitor's own basket events; "platform": the platform's own cart or
    # checkout (synced), which storefront events never change.
    source: str = Field(default="storefront", max_length=16, sa_column_kwargs={"server_default": "storefront"})
    visitor_id: str = Field(default="", max_length=64, sa_column_kwargs={"server_default": ""})  # who wrote it last
    revision: int = 1  # bumped on every change of items: a new revision is a new reminder trigger
    total: int = 0
    currency: str = Field(default="JPY", max_length=3)
    created_at: datetime
    updated_at: datetime


class CartLine(SQLModel, table=True):
    __tablename__ = "cart_lines"
    __table_args__ = (Index("ix_cart_lines_cart", "cart_id"),)

    id: int | None = Field(default=None, primary_key=True)
    shop_id: int = Field(foreign_key="shops.id")
    cart_id: int = Field(foreign_key="carts.id")
    product_id: int | None = Field(default=None, foreign_key="products.id")
    product_external_id: str = Field(default="", max_length=64)
    quantity: int = 1
    unit_price: int = 0


class BrowseEvent(SQLModel, table=True):
    """An identified customer viewed a product page."""

    __tablename__ = "browse_events"
    __table_args__ = (
        Index("ix_browse_shop_time", "shop_id", "occurred_at"),
        Index("ix_browse_shop_customer", "shop_id", "customer_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    shop_id: int = Field(foreign_key="shops.id")
    customer_id: int = Field(foreign_key="customers.id")
    product_id: int = Field(foreign_key="products.id")
    occurred_at: datetime

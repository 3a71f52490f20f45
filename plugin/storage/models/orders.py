"""Orders and their lines; money in integer minor units plus currency."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel


class Order(SQLModel, table=True):
    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("shop_id", "external_id"),
        Index("ix_orders_shop_customer_time", "shop_id", "customer_id", "ordered_at"),
        Index("ix_orders_shop_time_customer", "shop_id", "ordered_at", "customer_id"),  # a window, split by customer range
    )

    id: int | None = Field(default=None, primary_key=True)
    shop_id: int = Field(foreign_key="shops.id")
    external_id: str = Field(max_length=64)
    customer_id: int | None = Field(default=None, foreign_key="customers.id")
    ordered_at: datetime
    total: int = 0
    currency: str = Field(default="JPY", max_length=3)
    canceled: bool = False
    updated_at: datetime


class OrderLine(SQLModel, table=True):
    __tablename__ = "order_lines"
    __table_args__ = (
        Index("ix_order_lines_order", "order_id"),
        Index("ix_order_lines_shop_product", "shop_id", "product_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    shop_id: int = Field(foreign_key="shops.id")
    order_id: int = Field(foreign_key="orders.id")
    product_id: int | None = Field(default=None, foreign_key="products.id")
    product_external_id: str = Field(default="", max_length=64)
    name: str = Field(default="", max_length=500)
    unit_price: int = 0
    quantity: int = 1

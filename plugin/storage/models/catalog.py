"""Products with price, stock and the group code that merges variants of one item, and the
merchant's grouping rules."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel

FEW_LEFT = 2  # stock at or below this (and above 0) is "only a few left"


class Product(SQLModel, table=True):
    """A product of a shop; price in integer minor units of `currency`."""

    __tablename__ = "products"
    __table_args__ = (
        UniqueConstraint("shop_id", "external_id"),
        Index("ix_products_shop_group", "shop_id", "group_code"),
    )

    id: int | None = Field(default=None, primary_key=True)
    shop_id: int = Field(foreign_key="shops.id")
    external_id: str = Field(max_length=64)
    code: str = Field(default="", max_length=128)
    group_code: str = Field(default="", max_length=128)  # the group in use: the platform's, or a merchant rule's
    platform_group_code: str = Field(default="", max_length=128, sa_column_kwargs={"server_default": ""})
    name: str = Field(default="", max_length=500)
    price: int = 0
    currency: str = Field(default="JPY", max_length=3)
    stock: int | None = None  # None: stock not managed (always available)
    category: str = Field(default="", max_length=255)
    url: str = Field(default="", max_length=1000)
    image_url: str = Field(default="", max_length=1000)
    visible: bool = True
    restocked_at: datetime | None = None  # last time stock went from 0 to > 0
    low_stock_at: datetime | None = None  # last time stock fell to the "few left" level
    deleted_at: datetime | None = None  # gone from the platform (and not visible): order lines keep it
    updated_at: datetime


class GroupingRule(SQLModel, table=True):
    """A merchant's product-code grouping rule (plugin.storage.product_groups): the products whose
    code matches `codes` (codes and `*` patterns, one per line) join `group_name` ("merge"), or each
    become a group of its own ("split"). The lowest `position` that matches wins."""

    __tablename__ = "grouping_rules"
    __table_args__ = (Index("ix_grouping_rules_shop", "shop_id", "position"),)

    id: int | None = Field(default=None, primary_key=True)
    shop_id: int = Field(foreign_key="shops.id")
    position: int = 0
    action: str = Field(default="merge", max_length=8)
    codes: str = Field(max_length=4000)
    group_name: str = Field(default="", max_length=100)
    created_at: datetime

"""Platform hooks waiting for (or done by) a worker, the data exports customers asked for, and the
merchant-named point fields of platforms without native points."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


class HookDelivery(SQLModel, table=True):
    """One verified hook delivery, stored once per (shop, delivery key) and applied by a worker.

    `body` is the raw payload until it is applied, then emptied: the row stays as the dedupe key
    (a repeat of the delivery is acknowledged and changes nothing) without keeping personal data.
    """

    __tablename__ = "hook_deliveries"
    __table_args__ = (
        UniqueConstraint("shop_id", "delivery_key"),
        Index("ix_hook_deliveries_pending", "applied_at", "received_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    shop_id: int = Field(foreign_key="shops.id")
    delivery_key: str = Field(max_length=128)
    topic: str = Field(max_length=64)
    body: str = Field(default="", sa_type=Text)
    triggered_at: datetime | None = None
    received_at: datetime
    applied_at: datetime | None = None
    outcome: str = Field(default="", max_length=500)  # what applying did, or why it failed


class DataExport(SQLModel, table=True):
    """A customer's data request, answered: the JSON the merchant downloads from the console."""

    __tablename__ = "data_exports"
    __table_args__ = (Index("ix_data_exports_shop", "shop_id", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    shop_id: int = Field(foreign_key="shops.id")
    customer_id: int | None = Field(default=None, foreign_key="customers.id")  # None: Okaeri holds nothing on them
    customer_ref: str = Field(default="", max_length=255)  # the platform's customer id, as the request named it
    request_ref: str = Field(default="", max_length=128)  # the platform's id of the request
    body: str = Field(default="", sa_type=Text)
    created_at: datetime
    downloaded_at: datetime | None = None


class PointFields(SQLModel, table=True):
    """Where sync reads a shop's point data on a platform without native points (e.g. `loyalty.points`,
    and optionally a field with the expiry date); "" none, and then the point presets are unavailable."""

    __tablename__ = "point_fields"

    shop_id: int = Field(foreign_key="shops.id", primary_key=True)
    balance_field: str = Field(default="", max_length=320)
    expiry_field: str = Field(default="", max_length=320)
    updated_at: datetime

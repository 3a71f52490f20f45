"""Served recommendations: one trained set per shop at a time, swapped in atomically."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel


class RecommendationSet(SQLModel, table=True):
    """One training run's output; the shop's `recommendation_set_id` points at the one served."""

    __tablename__ = "recommendation_sets"

    id: int | None = Field(default=None, primary_key=True)
    shop_id: int = Field(foreign_key="shops.id", index=True)
    model: str = Field(max_length=32)
    validation_recall: float = 0.0
    customers: int = 0
    items: int = 0
    train_seconds: float = 0.0
    trained_at: datetime


class Recommendation(SQLModel, table=True):
    """An ordered list of product ids for a subject: a customer, a product, or a ranking."""

    __tablename__ = "recommendations"
    __table_args__ = (
        UniqueConstraint("set_id", "kind", "subject"),
        Index("ix_recommendations_shop_set", "shop_id", "set_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    shop_id: int = Field(foreign_key="shops.id")
    set_id: int = Field(foreign_key="recommendation_sets.id")
    kind: str = Field(max_length=16)  # customer, item, ranking
    subject: str = Field(max_length=255)  # customer id, product id, or e.g. "30d" / "30d:コーヒー豆"
    product_ids: str  # comma-separated, best first

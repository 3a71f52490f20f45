"""Survey answers: one 0–10 "would you recommend us" score per survey mail, with an optional
comment, and the product groups of the order it asks about."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel

__all__ = ["SurveyAnswer", "SurveyAnswerGroup"]


class SurveyAnswer(SQLModel, table=True):
    """A customer's answer to one survey mail (one row per message: a repeat click updates it).

    `confirmed_at` is set when the customer posts the thank-you page's form; from then on a
    click on a score link (which a mail scanner may prefetch) no longer changes the answer."""

    __tablename__ = "survey_answers"
    __table_args__ = (
        UniqueConstraint("message_id"),
        Index("ix_survey_answers_shop_answered", "shop_id", "answered_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    shop_id: int = Field(foreign_key="shops.id")
    customer_id: int = Field(foreign_key="customers.id")
    order_id: int | None = Field(default=None, foreign_key="orders.id")
    message_id: int = Field(foreign_key="messages.id")
    score: int
    comment: str = Field(default="", max_length=2000)
    answered_at: datetime  # the first click: the answer's place in time
    updated_at: datetime
    confirmed_at: datetime | None = None
    commented_at: datetime | None = None


class SurveyAnswerGroup(SQLModel, table=True):
    """One product group an answer is about (the groups of the order's products when answered)."""

    __tablename__ = "survey_answer_groups"
    __table_args__ = (
        UniqueConstraint("answer_id", "group_key"),
        Index("ix_survey_answer_groups_shop_group", "shop_id", "group_key"),
    )

    id: int | None = Field(default=None, primary_key=True)
    shop_id: int = Field(foreign_key="shops.id")
    answer_id: int = Field(foreign_key="survey_answers.id")
    group_key: str = Field(max_length=128)
    product_id: int | None = Field(default=None, foreign_key="products.id")  # one product of the group, for its name

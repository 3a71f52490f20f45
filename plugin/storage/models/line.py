"""LINE Official Accounts of a shop, the links of its customers to LINE users, and the retry key
of every push (plugin.channels.line)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel


class LineAccount(SQLModel, table=True):
    """One LINE Official Account (a Messaging API channel) a shop connected; several per shop."""

    __tablename__ = "line_accounts"
    __table_args__ = (Index("ix_line_accounts_shop", "shop_id"), UniqueConstraint("webhook_key"))

    id: int | None = Field(default=None, primary_key=True)
    shop_id: int = Field(foreign_key="shops.id")
    name: str = Field(max_length=100)  # the merchant's name for it (本店, 渋谷店 …)
    channel_id: str = Field(default="", max_length=32)  # the channel's id in the LINE Developers console
    bot_user_id: str = Field(default="", max_length=64)  # GET /v2/bot/info userId: webhooks' `destination`
    basic_id: str = Field(default="", max_length=32)  # @xxxx: for the friend-add and message links
    display_name: str = Field(default="", max_length=100)
    webhook_key: str = Field(max_length=64)  # the public part of its webhook URL
    secret_encrypted: str  # channel secret (TokenCipher)
    token_encrypted: str  # channel access token (TokenCipher)
    # The monthly message quota ran out (429), or the token was refused: nothing is pushed until then.
    paused_until: datetime | None = None
    pause_reason: str = Field(default="", max_length=32)  # quota | unauthorized
    created_at: datetime


class LineLink(SQLModel, table=True):
    """A shop customer known as one LINE user of one account, and whether that user follows it.

    A LINE user is one customer per account and a customer one LINE user per account; `following`
    is kept by the follow/unfollow webhooks (a push to a blocked user answers 200 and delivers nothing)."""

    __tablename__ = "line_links"
    __table_args__ = (UniqueConstraint("account_id", "line_user_id"), UniqueConstraint("account_id", "customer_id"),
                      Index("ix_line_links_customer", "customer_id"))

    id: int | None = Field(default=None, primary_key=True)
    shop_id: int = Field(foreign_key="shops.id")
    account_id: int = Field(foreign_key="line_accounts.id")
    customer_id: int = Field(foreign_key="customers.id")
    line_user_id: str = Field(max_length=64)
    following: bool = True
    source: str = Field(max_length=16)  # platform (the platform's line_uid) | code (the signed link, confirmed in LINE)
    linked_at: datetime
    changed_at: datetime  # the last follow or unfollow


class LineLinkCode(SQLModel, table=True):
    """A one-time code a customer sends to the account inside LINE to link themselves (from a
    signed link mailed to them): proves both the mail address and the LINE user."""

    __tablename__ = "line_link_codes"

    code: str = Field(primary_key=True, max_length=32)
    shop_id: int = Field(foreign_key="shops.id")
    account_id: int = Field(foreign_key="line_accounts.id")
    customer_id: int = Field(foreign_key="customers.id")
    expires_at: datetime
    used_at: datetime | None = None


class LinePush(SQLModel, table=True):
    """One logical push: its X-Line-Retry-Key, written before the first attempt and reused by every
    retry (LINE answers 409 to a key it already accepted); `accepted_at` once LINE took it."""

    __tablename__ = "line_pushes"

    message_key: str = Field(primary_key=True, max_length=255)  # the outbox message's stable id
    retry_key: str = Field(max_length=36)
    account_id: int
    created_at: datetime
    accepted_at: datetime | None = None
    attempts: int = 0


class LineScenarioAccount(SQLModel, table=True):
    """Which of the shop's accounts sends a scenario on LINE (none: the shop's first)."""

    __tablename__ = "line_scenario_accounts"

    shop_id: int = Field(primary_key=True, foreign_key="shops.id")
    scenario_key: str = Field(primary_key=True, max_length=32)
    account_id: int = Field(foreign_key="line_accounts.id")

"""A shop's install, its customers, per-scenario settings and sync cursors."""
from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Index, String, UniqueConstraint, false, true
from sqlmodel import Field, SQLModel


class InstallState(StrEnum):
    installing = "installing"
    active = "active"
    revoked = "revoked"
    uninstalled = "uninstalled"


class Shop(SQLModel, table=True):
    """One install of Okaeri in one shop on one platform."""

    __tablename__ = "shops"
    __table_args__ = (UniqueConstraint("platform", "external_id"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16)
    external_id: str = Field(max_length=255)  # ColorMe account_id, Shopify shop domain (name.myShopify.com)
    domain: str = Field(default="", max_length=255)
    name: str = Field(default="", max_length=255)
    owner_email: str = Field(default="", max_length=255)
    sender_address: str = Field(default="", max_length=500)  # postal address for mail footers
    timezone: str = Field(default="Asia/Tokyo", max_length=64)
    currency: str = Field(default="JPY", max_length=3)
    locale: str = Field(default="ja", max_length=8)
    state: InstallState = Field(default=InstallState.installing, sa_type=String(16))
    state_message: str = Field(default="", max_length=500)
    # Why the install is not active, as a key the settings page words in the merchant's language
    # (plugin.install.lifecycle.REASONS); "" while active.
    state_reason: str = Field(default="", max_length=32, sa_column_kwargs={"server_default": ""})
    access_token_encrypted: str = Field(default="")
    scopes: str = Field(default="", max_length=500)
    event_key: str = Field(default="", max_length=64, index=True)  # public key of the storefront script
    # The platform's id of the shop's storefront script registration on its main pages (the first
    # scope; every scope's tag and integrity is in script_tags): re-authorisation updates it in place.
    script_tag_id: str = Field(default="", max_length=64, sa_column_kwargs={"server_default": ""})
    # The merchant's switch for the storefront script (settings page): off, its registrations are
    # removed from the platform and its events ignored; on again, they are placed again.
    storefront_enabled: bool = Field(default=True, sa_column_kwargs={"server_default": true()})
    recommendation_set_id: int | None = None  # the served set; swapped in one UPDATE
    # Shop rules every scenario obeys (plugin.gates): no message lands from quiet_start_hour to
    # quiet_end_hour shop time (equal hours: no quiet hours); at most cap_count scenario messages
    # per customer within cap_window_hours.
    quiet_start_hour: int = Field(default=21, sa_column_kwargs={"server_default": "21"})
    quiet_end_hour: int = Field(default=8, sa_column_kwargs={"server_default": "8"})
    cap_window_hours: int = Field(default=24, sa_column_kwargs={"server_default": "24"})
    cap_count: int = Field(default=1, sa_column_kwargs={"server_default": "1"})
    # The holdout share the one switch gives each preset it writes; the name mail comes from
    # (empty: the shop's name); for platforms whose data has no point expiry, how many months
    # after a customer's last order their points expire (plugin.storage.point_expiry).
    default_holdout_percent: int = Field(default=10, sa_column_kwargs={"server_default": "10"})
    sender_name: str = Field(default="", max_length=100, sa_column_kwargs={"server_default": ""})
    points_expiry_months: int = Field(default=12, sa_column_kwargs={"server_default": "12"})
    # Where the point data comes from, for the label every page and mail showing an expiry carries
    # (plugin.storage.point_expiry.expiry_source): the platform's title, and whether its data has the
    # expiry dates (else the rule above applies). Set at install.
    points_source: str = Field(default="", max_length=64, sa_column_kwargs={"server_default": ""})
    points_expiry_from_platform: bool = Field(default=False, sa_column_kwargs={"server_default": false()})
    installed_at: datetime | None = None
    uninstalled_at: datetime | None = None
    created_at: datetime
    # Expiring tokens (plugin.sync.tokens): when the access token dies, the refresh token that renews
    # it (encrypted like it, replaced on every use) and when that one dies; "" / None for a platform
    # whose tokens never expire. A refresh is claimed by one worker (holder, until) with a
    # compare-and-swap on the stored refresh token, so no refresh token is ever used twice.
    token_expires_at: datetime | None = None
    refresh_token_encrypted: str = Field(default="", sa_column_kwargs={"server_default": ""})
    refresh_expires_at: datetime | None = None
    token_refresh_holder: str = Field(default="", max_length=64, sa_column_kwargs={"server_default": ""})
    token_refresh_until: datetime | None = None


class Customer(SQLModel, table=True):
    """A shop's customer with consent per channel and a points balance."""

    __tablename__ = "customers"
    __table_args__ = (
        UniqueConstraint("shop_id", "external_id"),
        Index("ix_customers_shop_email", "shop_id", "email"),
    )

    id: int | None = Field(default=None, primary_key=True)
    shop_id: int = Field(foreign_key="shops.id")
    external_id: str = Field(max_length=64)
    email: str = Field(default="", max_length=255)
    name: str = Field(default="", max_length=255)
    line_user_id: str | None = Field(default=None, max_length=64)
    email_consent: bool = False
    email_consent_at: datetime | None = None
    line_consent: bool = False
    points_balance: int = 0
    points_expire_at: datetime | None = None
    last_order_at: datetime | None = None  # kept by sync: the recency every lifecycle preset needs
    # A buyer without a platform account, keyed by email within the shop (plugin.sync.guests); a
    # member who registers with that email takes the row over.
    is_guest: bool = Field(default=False, sa_column_kwargs={"server_default": false()})
    deleted_at: datetime | None = None  # gone from the platform: kept for its orders, never messaged
    created_at: datetime
    updated_at: datetime


class ScenarioSetting(SQLModel, table=True):
    """A shop's switch and tuning for one scenario."""

    __tablename__ = "scenario_settings"
    __table_args__ = (UniqueConstraint("shop_id", "scenario_key"),)

    id: int | None = Field(default=None, primary_key=True)
    shop_id: int = Field(foreign_key="shops.id")
    scenario_key: str = Field(max_length=32)
    enabled: bool = False
    delay_minutes: int | None = None
    channel: str = Field(default="email", max_length=16)
    holdout_percent: int = 10
    subject_template: str | None = None
    body_template: str | None = None
    note: str = Field(default="", max_length=500)  # why a preset cannot run on this shop
    updated_at: datetime


class ScenarioRun(SQLModel, table=True):
    """A periodic preset's run for one period is written: later ticks skip its big audience."""

    __tablename__ = "scenario_runs"
    __table_args__ = (UniqueConstraint("shop_id", "scenario_key", "period"),)

    id: int | None = Field(default=None, primary_key=True)
    shop_id: int = Field(foreign_key="shops.id")
    scenario_key: str = Field(max_length=32)
    period: str = Field(max_length=16)
    finished_at: datetime


class SyncState(SQLModel, table=True):
    """Where the last sync of one resource of one shop got to."""

    __tablename__ = "sync_states"
    __table_args__ = (UniqueConstraint("shop_id", "resource"),)

    id: int | None = Field(default=None, primary_key=True)
    shop_id: int = Field(foreign_key="shops.id")
    resource: str = Field(max_length=32)
    cursor: datetime | None = None
    last_run_at: datetime | None = None
    last_count: int = 0
    last_error: str = Field(default="", max_length=1000)
    # A first sync in windows: when it began (its changes are re-read from there) and the edge of
    # the last window fully written, so an interrupted backfill resumes instead of starting over.
    backfill_started_at: datetime | None = None
    backfill_until: datetime | None = None


class WebhookReceipt(SQLModel, table=True):
    """A platform delivery already handled; a repeat with the same key is acknowledged and skipped."""

    __tablename__ = "webhook_receipts"
    __table_args__ = (UniqueConstraint("platform", "delivery_key"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16)
    delivery_key: str = Field(max_length=255)
    topic: str = Field(max_length=64)
    received_at: datetime


class Lease(SQLModel, table=True):
    """A named lease (the scheduler's leader lock): held by one process until it expires."""

    __tablename__ = "leases"

    name: str = Field(primary_key=True, max_length=64)
    holder: str = Field(max_length=128)
    expires_at: datetime

"""The connector interface and the platform-neutral records connectors yield.

Sync code (plugin/sync/store.py) stores these records; it never sees platform JSON.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, TypeVar

__all__ = [
    "ShopInfo",
    "CustomerRecord",
    "guest_external_id",
    "GUEST_PREFIX",
    "Window",
    "ProductRecord",
    "OrderLineRecord",
    "OrderRecord",
    "ShopConnector",
    "CheckoutLineRecord",
    "CheckoutRecord",
]


@dataclass(frozen=True)
class ShopInfo:
    external_id: str
    name: str
    domain: str
    owner_email: str = ""
    timezone: str = "Asia/Tokyo"
    currency: str = "JPY"
    locale: str = "ja"


@dataclass(frozen=True)
class CustomerRecord:
    external_id: str
    email: str
    name: str
    email_consent: bool
    points_balance: int
    updated_at: datetime
    line_user_id: str | None = None
    points_expire_at: datetime | None = None  # only from platforms whose data says (see Platform.points_expire_after)
    is_guest: bool = False  # a buyer without an account: `external_id` is guest_external_id(email)


GUEST_PREFIX = "guest:"


def guest_external_id(email: str) -> str:
    """The key of a buyer without an account: their email, within one shop (never across shops)."""
    return GUEST_PREFIX + email.strip().lower()


@dataclass(frozen=True)
class ProductRecord:
    external_id: str
    code: str
    group_code: str
    name: str
    price: int
    currency: str
    stock: int | None
    category: str
    url: str
    image_url: str
    visible: bool
    updated_at: datetime


@dataclass(frozen=True)
class OrderLineRecord:
    product_external_id: str
    name: str
    unit_price: int
    quantity: int


@dataclass(frozen=True)
class OrderRecord:
    external_id: str
    customer_external_id: str | None
    ordered_at: datetime
    updated_at: datetime
    total: int
    currency: str
    canceled: bool
    lines: list[OrderLineRecord] = field(default_factory=list)
    guest: CustomerRecord | None = None  # the buyer, when they have no account (customer_external_id is its key)


@dataclass(frozen=True)
class CheckoutLineRecord:
    product_external_id: str
    quantity: int


@dataclass(frozen=True)
class CheckoutRecord:
    """A checkout (or cart) the platform itself reports, with the link that brings its buyer back to it.

    `recovery_url` is the platform's own (verified hook or API), never a storefront event's. A
    `completed` checkout became an order: its cart has nothing left to remind of.
    """

    external_id: str
    customer: CustomerRecord | None
    recovery_url: str
    total: int
    currency: str
    updated_at: datetime
    completed: bool = False
    lines: tuple[CheckoutLineRecord, ...] = ()


T = TypeVar("T")


@dataclass(frozen=True)
class Window(Generic[T]):
    """One slice of a resource the platform lists completely (orders placed before `until`).

    Once all its records are written, an interrupted first sync may resume from `until`.
    """

    records: Iterator[T]
    until: datetime | None = None  # None: the last slice (or a listing that is not sliced)


class ShopConnector:
    """One installed shop's view of its platform.

    Implementations page through the platform's API, honour its rate limits and
    translate its errors into `connectors.errors`. Open one with `Platform.open_connector`
    and `close()` it when done.
    """

    platform: str = ""

    def fetch_shop(self) -> ShopInfo:
        """Return the shop's identity and locale settings."""
        raise NotImplementedError

    def shop_with_address(self) -> tuple[ShopInfo, str]:
        """Return the shop and its postal address for mail footers (特定電子メール法).

        Returns:
          tuple[ShopInfo, str]: The shop, and its address as one line ("" if unknown).
        """
        raise NotImplementedError

    def iter_customers(self, updated_since: datetime | None) -> Iterator[CustomerRecord]:
        """Yield customers changed since `updated_since` (all when None)."""
        raise NotImplementedError

    def iter_products(self, updated_since: datetime | None) -> Iterator[ProductRecord]:
        """Yield products changed since `updated_since` (all when None)."""
        raise NotImplementedError

    def iter_orders(
        self, updated_since: datetime | None, history_start: datetime
    ) -> Iterator[OrderRecord]:
        """Yield orders changed since `updated_since`, or all placed after `history_start`."""
        raise NotImplementedError

    def iter_order_windows(
        self, updated_since: datetime | None, history_start: datetime
    ) -> Iterator[Window[OrderRecord]]:
        """`iter_orders` in slices the sync writes one after another; the default is one slice."""
        yield Window(self.iter_orders(updated_since, history_start))

    def count(self, resource: str, updated_since: datetime | None) -> int | None:
        """How many records a sync of `resource` will yield, if the platform can say cheaply."""
        return None

    def platform_totals(self, placed_from: datetime, placed_until: datetime) -> dict[str, int]:
        """How many records the platform holds, for reconciliation, one cheap request per resource.

        Returns:
          dict[str, int]: By resource: "customers" (members, not guests), "products" and "orders"
          (placed from `placed_from` until before `placed_until`, on whole seconds); a resource the
          platform cannot count is left out.
        """
        return {}

    def use_point_fields(self, balance_field: str, expiry_field: str = "") -> None:
        """Read customers' point balance (and expiry date) from these merchant-named fields, for a
        platform without native points; "" reads none. The default ignores them."""

    def iter_products_by_reference(self, references: tuple[str, ...]) -> Iterator[ProductRecord]:
        """Re-read the products these platform references (e.g. an inventory item a hook named)
        belong to, as they are now; the default reads none."""
        return iter(())

    def close(self) -> None:
        """Release the connector's connections; the default holds none."""

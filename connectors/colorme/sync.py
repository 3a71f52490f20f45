"""ColorMeConnector: walks the REST API for one shop (ColorMe has no data webhooks).

Orders come in explicit, half-open windows of `make_date`: ColorMe's `after`/`before` are both
inclusive ("指定日時以降" / "指定日時以前", to the second), so a window [start, end) asks for
`after=start, before=end-1s` and an order placed exactly on an edge is in one window only. Without
dates GET /sales returns only the last 7 days, so every sales query carries `after` and `before`.
"""
from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from connectors.base import CustomerRecord, OrderRecord, ProductRecord, ShopConnector, ShopInfo, Window
from connectors.colorme import mapping
from connectors.colorme.client import ColorMeClient
from connectors.colorme.paging import total, walk
from connectors.colorme.params import CUSTOMERS, PRODUCTS, SALES, jst

__all__ = ["ColorMeConnector", "jst", "sales_windows"]

# Re-read a little before the cursor: it covers a clock skew between ColorMe and us.
CURSOR_OVERLAP = timedelta(minutes=10)
# Backfill walks explicit windows: without dates GET /sales returns only the last 7 days.
SALES_WINDOW = timedelta(days=31)
SECOND = timedelta(seconds=1)


class ColorMeConnector(ShopConnector):
    platform = "colorme"

    def __init__(self, client: ColorMeClient, now: datetime) -> None:
        self.client = client
        self.now = now
        self._shop_url: str | None = None
        self._categories: dict[tuple[int, int], str] | None = None

    def fetch_shop(self) -> ShopInfo:
        return mapping.shop_info(self.client.get("/v1/shop.json"))

    def close(self) -> None:
        self.client.close()

    def shop_with_address(self) -> tuple[ShopInfo, str]:
        """The shop and its postal address for mail footers, from one GET /v1/shop."""
        body = self.client.get("/v1/shop.json")
        return mapping.shop_info(body), mapping.sender_address(body)

    def iter_customers(self, updated_since: datetime | None) -> Iterator[CustomerRecord]:
        for data in walk(self.client, CUSTOMERS, update_date_min=_since(updated_since)):
            record = mapping.customer(data)
            if record is not None:
                yield record

    def iter_products(self, updated_since: datetime | None) -> Iterator[ProductRecord]:
        shop_url, categories = self._catalog_context()
        for data in walk(self.client, PRODUCTS, update_date_min=_since(updated_since)):
            yield mapping.product(data, shop_url, categories)

    def iter_orders(
        self, updated_since: datetime | None, history_start: datetime
    ) -> Iterator[OrderRecord]:
        for window in self.iter_order_windows(updated_since, history_start):
            yield from window.records

    def iter_order_windows(
        self, updated_since: datetime | None, history_start: datetime
    ) -> Iterator[Window[OrderRecord]]:
        if updated_since is not None:  # changes to any order of the history, in one listing
            yield Window(self._sales(after=_second(history_start), before=_second(self.now),
                                     update_date_min=_since(updated_since)))
            return
        for start, end in sales_windows(history_start, self.now):
            yield Window(self._sales(after=start, before=end - SECOND), until=end)

    def count(self, resource: str, updated_since: datetime | None) -> int | None:
        if resource not in ("customers", "products"):
            return None
        return total(self.client, CUSTOMERS if resource == "customers" else PRODUCTS,
                     update_date_min=_since(updated_since))

    def platform_totals(self, placed_from: datetime, placed_until: datetime) -> dict[str, int]:
        return {"customers": total(self.client, CUSTOMERS, member=True),
                "products": total(self.client, PRODUCTS),
                "orders": total(self.client, SALES, after=_second(placed_from), before=_second(placed_until) - SECOND)}

    def _sales(self, **filters: Any) -> Iterator[OrderRecord]:
        for data in walk(self.client, SALES, **filters):
            yield mapping.order(data)

    def _catalog_context(self) -> tuple[str, dict[tuple[int, int], str]]:
        if self._shop_url is None or self._categories is None:
            self._shop_url = self.fetch_shop().domain
            self._categories = mapping.categories(self.client.get("/v1/categories.json"))
        return self._shop_url, self._categories


def sales_windows(history_start: datetime, now: datetime) -> Iterator[tuple[datetime, datetime]]:
    """Half-open [start, end) windows on whole seconds from `history_start` through `now`'s second."""
    start, last = _second(history_start), _second(now) + SECOND
    while start < last:
        end = min(start + SALES_WINDOW, last)
        yield start, end
        start = end


def _second(moment: datetime) -> datetime:
    return moment.replace(microsecond=0)


def _since(moment: datetime | None) -> datetime | None:
    return _second(moment - CURSOR_OVERLAP) if moment else None

"""ColorMeConnector: walks the REST API for one shop (ColorMe has no data webhooks)."""
from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from connectors.base import CustomerRecord, OrderRecord, ProductRecord, ShopConnector, ShopInfo
from connectors.colorme import mapping
from connectors.colorme.client import PAGE_LIMITS, ColorMeClient

__all__ = ["ColorMeConnector", "jst"]

JST = ZoneInfo("Asia/Tokyo")
# Re-read a little before the cursor: offset paging over a changing list can skip rows.
CURSOR_OVERLAP = timedelta(minutes=10)
# Backfill walks explicit windows: without dates GET /sales returns only the last 7 days.
SALES_WINDOW = timedelta(days=31)


def jst(moment: datetime) -> str:
    """A search parameter: ColorMe reads `YYYY-MM-DD hh:mm:ss` as Japan time."""
    return moment.astimezone(JST).strftime("%Y-%m-%d %H:%M:%S")


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
        params = _since("update_date_min", updated_since)
        for data, _ in self.client.paginate(
            "/v1/customers.json", "customers", params, PAGE_LIMITS["customers"]
        ):
            yield mapping.customer(data)

    def iter_products(self, updated_since: datetime | None) -> Iterator[ProductRecord]:
        shop_url, categories = self._catalog_context()
        params = _since("update_date_min", updated_since)
        for data, _ in self.client.paginate(
            "/v1/products.json", "products", params, PAGE_LIMITS["products"]
        ):
            yield mapping.product(data, shop_url, categories)

    def iter_orders(
        self, updated_since: datetime | None, history_start: datetime
    ) -> Iterator[OrderRecord]:
        for params in self._sales_windows(updated_since, history_start):
            for data, _ in self.client.paginate("/v1/sales.json", "sales", params, PAGE_LIMITS["sales"]):
                yield mapping.order(data)

    def count(self, resource: str, updated_since: datetime | None) -> int | None:
        if resource not in ("customers", "products"):
            return None
        params = {**_since("update_date_min", updated_since), "limit": 1, "offset": 0}
        body = self.client.get(f"/v1/{resource}.json", params)
        return int((body.get("meta") or {}).get("total", 0))

    def _sales_windows(
        self, updated_since: datetime | None, history_start: datetime
    ) -> Iterator[dict[str, str]]:
        if updated_since is not None:
            yield {
                "after": jst(history_start),
                "before": jst(self.now),
                "update_date_min": jst(updated_since - CURSOR_OVERLAP),
            }
            return
        start = history_start
        while start < self.now:
            end = min(start + SALES_WINDOW, self.now)
            yield {"after": jst(start), "before": jst(end)}
            start = end

    def _catalog_context(self) -> tuple[str, dict[tuple[int, int], str]]:
        if self._shop_url is None or self._categories is None:
            self._shop_url = self.fetch_shop().domain
            self._categories = mapping.categories(self.client.get("/v1/categories.json"))
        return self._shop_url, self._categories


def _since(param: str, moment: datetime | None) -> dict[str, str]:
    return {param: jst(moment - CURSOR_OVERLAP)} if moment else {}

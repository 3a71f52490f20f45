"""The sandbox's REST lists and records, in ColorMe's shapes.

- Lists page with `limit`/`offset` and answer `meta: {total, limit, offset}`; an oversize limit
  is clamped and a malformed parameter ignored, silently, as ColorMe does (200, never an error).
- Date searches (`after`/`before`, `*_date_min`/`*_date_max`) are inclusive, to the second, Japan time.
- GET /v1/sales without `after` (or `make_date_min`) returns only orders since 00:00 seven days
  before `before` (or now): the documented trap a sync must not fall into.
- Guests (`member: false`) exist only inside their sales: GET /v1/customers/{id} answers 404.
- A deleted product is gone from GET /v1/products and answers 404, but its old sales keep it.
- Errors have ColorMe's body: `{"errors": [{"code", "message", "status"}]}`.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from plugin.demo.sandbox.seed import SandboxData

__all__ = ["register_listings", "error", "delete_product", "delete_customer", "touch", "LIMITS", "DEFAULT_SALES_DAYS"]

JST = ZoneInfo("Asia/Tokyo")
LIMITS = {"sales": (10, 100), "customers": (10, 100), "products": (10, 50)}  # (default, maximum)
DEFAULT_SALES_DAYS = 7
Filter = Callable[[dict[str, Any]], bool]


def error(status: int, code: int, message: str) -> JSONResponse:
    """ColorMe's error body."""
    return JSONResponse({"errors": [{"code": code, "message": message, "status": status}]}, status)


def delete_product(data: SandboxData, product_id: int) -> None:
    """The merchant deletes a product: it leaves the lists; the sales that sold it keep their lines."""
    product = next(p for p in data.products if p["id"] == product_id)
    data.products.remove(product)
    data.deleted_products.append(product)


def delete_customer(data: SandboxData, customer_id: int) -> None:
    """The merchant deletes a member: they leave the lists; their sales keep the buyer's copy."""
    data.customers[:] = [c for c in data.customers if c["id"] != customer_id]


def touch(record: dict[str, Any], now: datetime | None = None, **changes: Any) -> None:
    """Change a record as the merchant would: its `update_date` moves to now."""
    record.update(changes, update_date=int(now.timestamp() if now else time.time()))


def register_listings(app: FastAPI, data: SandboxData) -> None:
    """GET /v1/{customers,products,sales}.json and their records by id."""

    def own(request: Request) -> bool:
        return bool(request.state.account == data.shop["id"])

    @app.get("/v1/customers.json")
    def customers(request: Request) -> JSONResponse:
        rows = _search(data.customers, request, ("make_date", "update_date"), member=_boolean("member"))
        return _page(request, "customers", rows if own(request) else [])

    @app.get("/v1/products.json")
    def products(request: Request) -> JSONResponse:
        rows = _search(data.products, request, ("make_date", "update_date"))
        return _page(request, "products", rows if own(request) else [])

    @app.get("/v1/sales.json")
    def sales(request: Request) -> JSONResponse:
        return _page(request, "sales", _sales(data, request) if own(request) else [])

    @app.get("/v1/customers/{customer_id}.json")
    def customer(customer_id: str, request: Request) -> JSONResponse:
        found = _by_id(data.customers if own(request) else [], customer_id)
        return JSONResponse({"customer": found}) if found else error(404, 404100, "顧客が見つかりません")

    @app.get("/v1/products/{product_id}.json")
    def product(product_id: str, request: Request) -> JSONResponse:
        found = _by_id(data.products if own(request) else [], product_id)
        return JSONResponse({"product": found}) if found else error(404, 404100, "商品が見つかりません")

    @app.get("/v1/sales/{sale_id}.json")
    def sale(sale_id: str, request: Request) -> JSONResponse:
        found = _by_id(data.sales if own(request) else [], sale_id)
        return JSONResponse({"sale": found}) if found else error(404, 404100, "受注が見つかりません")


def _sales(data: SandboxData, request: Request) -> list[dict[str, Any]]:
    query = request.query_params
    before = _time(query.get("before") or query.get("make_date_max")) or int(time.time())
    after = _time(query.get("after") or query.get("make_date_min"))
    if after is None:  # documented: 00:00 seven days before `before` (or now)
        day = datetime.fromtimestamp(before, JST) - timedelta(days=DEFAULT_SALES_DAYS)
        after = int(day.replace(hour=0, minute=0, second=0, microsecond=0).timestamp())
    placed = [s for s in data.sales if after <= s["make_date"] <= before]
    return _search(placed, request, ("update_date",), canceled=_boolean("canceled"))


def _search(records: list[dict[str, Any]], request: Request, dates: tuple[str, ...],
            **flags: Callable[[Request], Filter | None]) -> list[dict[str, Any]]:
    query = request.query_params
    tests: list[Filter] = []
    for name in dates:
        tests.append(_between(name, _time(query.get(f"{name}_min")), _time(query.get(f"{name}_max"))))
    ids = {part for part in (query.get("ids") or "").split(",") if part.isdigit()}
    if ids:
        tests.append(lambda r: str(r["id"]) in ids)
    tests += [t for flag in flags.values() if (t := flag(request)) is not None]
    return [r for r in records if all(test(r) for test in tests)]


def _between(name: str, low: int | None, high: int | None) -> Filter:
    def test(record: dict[str, Any]) -> bool:
        return (low is None or record[name] >= low) and (high is None or record[name] <= high)
    return test


def _boolean(name: str) -> Callable[[Request], Filter | None]:
    def read(request: Request) -> Filter | None:
        value = {"true": True, "1": True, "false": False, "0": False}.get(request.query_params.get(name, ""))
        return None if value is None else (lambda r: bool(r.get(name)) == value)
    return read


def _page(request: Request, key: str, records: list[dict[str, Any]]) -> JSONResponse:
    default, maximum = LIMITS[key]
    query = request.query_params
    limit = min(max(_int(query.get("limit"), default), 1), maximum)  # clamped silently
    offset = max(_int(query.get("offset"), 0), 0)
    return JSONResponse({key: [_public(r) for r in records[offset:offset + limit]],
                         "meta": {"total": len(records), "limit": limit, "offset": offset}})


def _by_id(records: list[dict[str, Any]], record_id: str) -> dict[str, Any] | None:
    return next((_public(r) for r in records if str(r["id"]) == record_id), None)


def _public(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if not k.startswith("_")}


def _time(value: str | None) -> int | None:
    """`YYYY-MM-DD` or `YYYY-MM-DD hh:mm:ss`, Japan time; anything else is ignored."""
    if not value:
        return None
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d", "%Y/%m/%d"):
        try:
            return int(datetime.strptime(value, fmt).replace(tzinfo=JST).timestamp())
        except ValueError:
            continue
    return None


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default

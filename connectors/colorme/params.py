"""Search parameters of ColorMe's list endpoints, checked before anything is sent.

ColorMe answers 200 to a search it cannot read: an unknown name, a malformed date, a negative
offset or an oversize limit is ignored or clamped silently (PLATFORMS.md 1.3), so a typo would
sync the wrong rows without a word. Each endpoint here lists the names the API documents
(pepabo/colormeshop-mcp tools.json: getSales, getCustomers, getProducts) with a kind per name; `query`
turns typed values into the strings ColorMe reads and raises `InvalidQuery` for anything else.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

__all__ = ["InvalidQuery", "Endpoint", "SALES", "CUSTOMERS", "PRODUCTS", "ENDPOINTS", "jst"]

JST = ZoneInfo("Asia/Tokyo")
Encode = Callable[[str, Any], str]


class InvalidQuery(ValueError):
    """A search parameter ColorMe would silently ignore or clamp: a programming error, never sent."""


def jst(moment: datetime) -> str:
    """A search date: ColorMe reads `YYYY-MM-DD hh:mm:ss` as Japan time (whole seconds)."""
    if moment.tzinfo is None:
        raise InvalidQuery(f"a search date needs a time zone, got naive {moment!r}")
    return moment.astimezone(JST).strftime("%Y-%m-%d %H:%M:%S")


_DATE_TEXT = re.compile(r"\d{4}-\d{2}-\d{2}( \d{2}:\d{2}:\d{2})?")
_IDS = re.compile(r"[1-9]\d{0,18}")
_FIELD = re.compile(r"[a-z][a-z0-9_]*")


def _date(name: str, value: Any) -> str:
    if isinstance(value, datetime):
        return jst(value)
    if isinstance(value, str) and _DATE_TEXT.fullmatch(value):
        try:
            datetime.strptime(value, "%Y-%m-%d %H:%M:%S" if " " in value else "%Y-%m-%d")
            return value
        except ValueError:
            pass
    raise InvalidQuery(f"{name}: expected an aware datetime or 'YYYY-MM-DD[ hh:mm:ss]', got {value!r}")


def _boolean(name: str, value: Any) -> str:
    if not isinstance(value, bool):
        raise InvalidQuery(f"{name}: expected True or False, got {value!r}")
    return "true" if value else "false"


def _ids(name: str, value: Any) -> str:
    items = [value] if isinstance(value, (int, str)) else list(value) if isinstance(value, Iterable) else [value]
    texts = [str(item) for item in items if not isinstance(item, bool)]
    if not texts or len(texts) != len(items) or not all(_IDS.fullmatch(t) for t in texts):
        raise InvalidQuery(f"{name}: expected positive integer ids, got {value!r}")
    return ",".join(texts)  # comma-separated: the `ids[0]=` form answers 500 (PLATFORMS.md 1.3)


def _text(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidQuery(f"{name}: expected a non-empty string, got {value!r}")
    return value


def _count(low: int, high: int) -> Encode:
    def encode(name: str, value: Any) -> str:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise InvalidQuery(f"{name}: expected an integer from {low} to {high}, got {value!r}")
        return str(value)
    return encode


def _one_of(*choices: str) -> Encode:
    def encode(name: str, value: Any) -> str:
        if value not in choices:
            raise InvalidQuery(f"{name}: expected one of {', '.join(choices)}, got {value!r}")
        return str(value)
    return encode


def _fields(name: str, value: Any) -> str:
    names = [value] if isinstance(value, str) else list(value)
    if not names or not all(isinstance(n, str) and _FIELD.fullmatch(n) for n in names):
        raise InvalidQuery(f"{name}: expected response keys, got {value!r}")
    return ",".join(names)  # `fields[]=` silently returns empty objects


def _sort(columns: Iterable[str]) -> Encode:
    known = set(columns)

    def encode(name: str, value: Any) -> str:
        keys = [value] if isinstance(value, str) else list(value)
        if not keys or not all(isinstance(k, str) and k.removeprefix("-") in known for k in keys):
            raise InvalidQuery(f"{name}: expected [-]{'|'.join(sorted(known))}, got {value!r}")
        return ",".join(keys)
    return encode


MAX_OFFSET = 2**53 - 1
MAIL_STATE = _one_of("not_yet", "sent", "pass")


@dataclass(frozen=True)
class Endpoint:
    """One list endpoint: its path, the key of its records, its documented page size and parameters."""

    name: str
    path: str
    page_size: int
    params: Mapping[str, Encode]
    ranges: tuple[tuple[str, str], ...] = ()  # (min, max) pairs that must not cross
    synonyms: tuple[tuple[str, str], ...] = ()  # names for one filter: give one of them

    def query(self, **values: Any) -> dict[str, str]:
        """The query string values ColorMe reads for these typed values; InvalidQuery otherwise."""
        unknown = sorted(set(values) - set(self.params))
        if unknown:
            raise InvalidQuery(f"GET {self.path}: unknown parameter(s) {', '.join(unknown)} "
                               f"(ColorMe would ignore them); known: {', '.join(sorted(self.params))}")
        for first, second in self.synonyms:
            if values.get(first) is not None and values.get(second) is not None:
                raise InvalidQuery(f"GET {self.path}: {first} and {second} are one filter; give one")
        encoded = {name: self.params[name](name, value) for name, value in values.items() if value is not None}
        for low, high in self.ranges:
            if low in encoded and high in encoded and _moment(encoded[low]) > _moment(encoded[high]):
                raise InvalidQuery(f"GET {self.path}: {low} {encoded[low]} is after {high} {encoded[high]}")
        return encoded


def _moment(text: str) -> str:
    return text if " " in text else f"{text} 00:00:00"


def _paging(page_size: int) -> dict[str, Encode]:
    return {"limit": _count(1, page_size), "offset": _count(0, MAX_OFFSET), "fields": _fields}


def _dates(*names: str) -> dict[str, Encode]:
    return {name: _date for name in names}


SALES = Endpoint(
    "sales", "/v1/sales.json", 100,
    {"ids": _ids, **_dates("after", "before", "make_date_min", "make_date_max", "update_date_min", "update_date_max"),
     "customer_ids": _ids, "customer_name": _text, "customer_furigana": _text, "customer_mail": _text,
     "accepted_mail_state": MAIL_STATE, "paid_mail_state": MAIL_STATE, "delivered_mail_state": MAIL_STATE,
     "mobile": _boolean, "paid": _boolean, "delivered": _boolean, "canceled": _boolean, "payment_ids": _ids,
     **_paging(100)},
    ranges=(("after", "before"), ("make_date_min", "make_date_max"), ("update_date_min", "update_date_max")),
    synonyms=(("after", "make_date_min"), ("before", "make_date_max")),
)
CUSTOMERS = Endpoint(
    "customers", "/v1/customers.json", 100,
    {"ids": _ids, "name": _text, "furigana": _text, "mail": _text, "postal": _text, "tel": _text,
     "line_uid": _text, "sex": _one_of("male", "female", "not_applicable"), "member": _boolean,
     "receive_mail_magazine": _boolean,
     **_dates("make_date_min", "make_date_max", "update_date_min", "update_date_max"), **_paging(100)},
    ranges=(("make_date_min", "make_date_max"), ("update_date_min", "update_date_max")),
)
PRODUCTS = Endpoint(
    "products", "/v1/products.json", 50,
    {"ids": _ids, "category_id_big": _count(0, MAX_OFFSET), "category_id_small": _count(0, MAX_OFFSET),
     "group_ids": _ids, "model_number": _text, "name": _text,
     "display_state": _one_of("showing", "hidden", "showing_for_members", "sale_for_members"),
     "stocks": _count(0, MAX_OFFSET), "stock_managed": _boolean, "recent_zero_stocks": _boolean,
     **_dates("make_date_min", "make_date_max", "update_date_min", "update_date_max"),
     **{name: _count(0, MAX_OFFSET) for name in ("sales_price_min", "sales_price_max", "price_min", "price_max",
                                                 "members_price_min", "members_price_max")},
     "jan_code": _text, "sort": _sort(("make_date", "update_date", "sales_price", "price", "members_price")),
     **_paging(50)},
    ranges=(("make_date_min", "make_date_max"), ("update_date_min", "update_date_max"),
            ("sales_price_min", "sales_price_max"), ("price_min", "price_max")),
)
ENDPOINTS = {endpoint.name: endpoint for endpoint in (SALES, CUSTOMERS, PRODUCTS)}

"""The ColorMe connector's listings: rows that move while paged, window edges, the 7-day trap,
query parameters refused before sending, guests. ColorMe-shaped answers (respx, or the sandbox)."""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import respx
from fastapi.testclient import TestClient

from connectors.colorme import mapping
from connectors.colorme.client import ColorMeClient
from connectors.colorme.paging import walk
from connectors.colorme.params import CUSTOMERS, PRODUCTS, SALES, InvalidQuery
from connectors.colorme.sync import SALES_WINDOW, ColorMeConnector, sales_windows
from plugin.demo.sandbox.app import SandboxConfig, create_sandbox_app
from plugin.demo.sandbox.listing import DEFAULT_SALES_DAYS
from plugin.demo.sandbox.seed import SandboxData, generate

API = "https://api.shop-pro.jp"
NOW = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)
TOKEN = "sandbox-token"


def _client(transport: httpx.BaseTransport | None = None) -> ColorMeClient:
    return ColorMeClient(API, TOKEN, sleep=lambda _s: None, transport=transport)


class MovingList:
    """A ColorMe list ordered by update_date (the worst order: an updated row jumps to the end),
    with a hook that changes the list just before the n-th request is answered."""

    def __init__(self, size: int, key: str = "customers") -> None:
        self.key = key
        self.rows = [{"id": 1000 + i, "mail": f"c{i}@example.jp", "member": True, "update_date": 1_700_000_000 + i}
                     for i in range(size)]
        self.before: dict[int, Callable[[], None]] = {}
        self.requests = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        if self.requests in self.before:
            self.before[self.requests]()
        ordered = sorted(self.rows, key=lambda r: (r["update_date"], r["id"]))
        limit, offset = int(request.url.params["limit"]), int(request.url.params["offset"])
        return httpx.Response(200, json={self.key: ordered[offset:offset + limit],
                                         "meta": {"total": len(ordered), "limit": limit, "offset": offset}})

    def update(self, index: int) -> None:
        """The merchant edits the row now at `index`: it moves to the end of the list."""
        row = sorted(self.rows, key=lambda r: (r["update_date"], r["id"]))[index]
        row["update_date"] = max(r["update_date"] for r in self.rows) + 1

    def ids(self) -> set[int]:
        return {r["id"] for r in self.rows}


@respx.mock
def test_a_row_updated_between_page_one_and_two_is_synced_exactly_once_and_none_is_skipped() -> None:
    # Given 250 customers, and a merchant who edits the 11th while the first page is being stored
    listing = MovingList(250)
    listing.before[2] = lambda: listing.update(10)
    respx.get(f"{API}/v1/customers.json").mock(side_effect=listing)
    # When the customers are walked
    seen = Counter(int(c.external_id) for c in ColorMeConnector(_client(), NOW).iter_customers(None))
    # Then every customer came exactly once: the edited one too, and the one that slid back into page one
    assert set(seen) == listing.ids() and set(seen.values()) == {1}


@respx.mock
def test_plain_offset_paging_would_skip_a_row_in_the_same_situation() -> None:
    # (the trap the walk above avoids is real: the naive walk misses the row at the page edge)
    listing = MovingList(250)
    listing.before[2] = lambda: listing.update(10)
    respx.get(f"{API}/v1/customers.json").mock(side_effect=listing)
    naive = [r["id"] for r, _ in _client().paginate("/v1/customers.json", "customers", {}, 100)]
    assert len(set(naive)) < 250 and len(naive) > len(set(naive))


@respx.mock
def test_rows_deleted_or_inserted_during_paging_lose_and_repeat_nothing() -> None:
    listing = MovingList(250)

    def delete_two_early_rows() -> None:
        del listing.rows[3:5]

    def insert_one_in_front() -> None:
        listing.rows.insert(0, {"id": 1, "mail": "new@example.jp", "member": True, "update_date": 0})

    listing.before[2] = delete_two_early_rows
    listing.before[4] = insert_one_in_front
    respx.get(f"{API}/v1/customers.json").mock(side_effect=listing)
    seen = Counter(int(c.external_id) for c in ColorMeConnector(_client(), NOW).iter_customers(None))
    assert set(seen.values()) == {1}
    assert listing.ids() - {1} <= set(seen)  # every row listed from start to end; the newcomer is the next sync's


@respx.mock
def test_a_page_pushed_on_by_an_insertion_is_not_walked_again() -> None:
    listing = MovingList(250)
    listing.before[2] = lambda: listing.rows.insert(0, {"id": 1, "mail": "n@example.jp", "update_date": 0})
    respx.get(f"{API}/v1/customers.json").mock(side_effect=listing)
    list(walk(_client(), CUSTOMERS))
    assert listing.requests == 3  # 0-99, 99-198, 198-250: the repeat is skipped, no restart


def _sandbox(data: SandboxData) -> httpx.MockTransport:
    sandbox = TestClient(create_sandbox_app(data, SandboxConfig("http://okaeri.test", "cid", "cs", "wh",
                                                                tokens={TOKEN})))

    def forward(request: httpx.Request) -> httpx.Response:
        answer = sandbox.request(request.method, request.url.raw_path.decode(), headers=dict(request.headers))
        return httpx.Response(answer.status_code, headers=answer.headers, content=answer.content)

    return httpx.MockTransport(forward)


def _real_now() -> datetime:
    # the sandbox, like ColorMe, counts the 7 days back from its own clock
    return datetime.now(UTC).replace(microsecond=0)


def test_an_order_placed_exactly_on_a_window_edge_is_in_exactly_one_window() -> None:
    # Given a shop with orders placed on the second each window begins and the second before it
    now = _real_now()
    data = generate(42, now, "https://sandbox.test/store", customers=40, products=20)
    history_start = now - timedelta(days=100)
    edges = [end for _, end in sales_windows(history_start, now)][:-1]
    template = data.sales[0]
    for n, edge in enumerate(edges):
        for offset, suffix in ((0, 1), (-1, 2)):
            sale = {**template, "id": 80000000 + n * 10 + suffix, "make_date": int(edge.timestamp()) + offset}
            data.sales.append(sale)
    # When the order history is walked window by window
    connector = ColorMeConnector(_client(_sandbox(data)), now)
    per_window = [[o.external_id for o in w.records] for w in connector.iter_order_windows(None, history_start)]
    # Then each of those orders is in one window, the edge one in the window that starts there
    seen = Counter(order for window in per_window for order in window)
    placed = [s for s in data.sales if s["make_date"] >= int(history_start.replace(microsecond=0).timestamp())]
    assert set(seen.values()) == {1} and len(seen) == len(placed)
    for n in range(len(edges)):
        assert f"{80000000 + n * 10 + 1}" in per_window[n + 1] and f"{80000000 + n * 10 + 2}" in per_window[n]


def test_windows_are_half_open_whole_seconds_asked_with_inclusive_after_and_before() -> None:
    windows = list(sales_windows(NOW - timedelta(days=62, microseconds=-500), NOW))
    assert all(end - start <= SALES_WINDOW for start, end in windows)
    assert all(a[1] == b[0] for a, b in zip(windows, windows[1:], strict=False))
    assert windows[-1][1] == NOW + timedelta(seconds=1) and windows[0][0].microsecond == 0


def test_sales_without_dates_are_only_the_last_seven_days_and_the_sync_reads_them_all() -> None:
    # Given a year of orders in the sandbox
    now = _real_now()
    data = generate(42, now, "https://sandbox.test/store", customers=80, products=30)
    transport = _sandbox(data)
    # When GET /sales is asked without dates, the sandbox answers as ColorMe does: 7 days only
    plain = _client(transport).get("/v1/sales.json", {"limit": 100})
    cutoff = (now.astimezone(mapping_jst()) - timedelta(days=DEFAULT_SALES_DAYS)).replace(hour=0, minute=0, second=0)
    recent = [s for s in data.sales if s["make_date"] >= cutoff.timestamp()]
    assert plain["meta"]["total"] == len(recent) < len(data.sales) / 10
    # Then the connector's windows still bring every order of the history (this fails if a window is dropped)
    orders = list(ColorMeConnector(_client(transport), now).iter_orders(None, now - timedelta(days=400)))
    assert len(orders) == len(data.sales) and len({o.external_id for o in orders}) == len(data.sales)
    # and so do incremental syncs, which ask with `after`/`before` too
    changed = list(ColorMeConnector(_client(transport), now).iter_orders(now - timedelta(days=200), now - timedelta(days=400)))
    assert len(changed) > len(recent)


def mapping_jst() -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo("Asia/Tokyo")


@pytest.mark.parametrize(("endpoint", "values", "why"), [
    (SALES, {"limit": 101}, "limit"),
    (PRODUCTS, {"limit": 51}, "limit"),
    (CUSTOMERS, {"offset": -1}, "offset"),
    (SALES, {"update_since": NOW}, "unknown parameter"),
    (SALES, {"after": datetime(2026, 1, 1)}, "time zone"),
    (SALES, {"after": "2026/13/01"}, "after"),
    (SALES, {"after": NOW, "before": NOW - timedelta(days=1)}, "is after"),
    (SALES, {"after": NOW, "make_date_min": NOW}, "one filter"),
    (SALES, {"paid": "yes"}, "True or False"),
    (SALES, {"ids": ["12", "x"]}, "ids"),
    (SALES, {"accepted_mail_state": "done"}, "not_yet"),
    (PRODUCTS, {"display_state": "visible"}, "showing"),
    (PRODUCTS, {"sort": "name"}, "update_date"),
    (CUSTOMERS, {"fields": ["id", "mail[]"]}, "keys"),
])
def test_a_bad_query_parameter_is_refused_before_any_request(endpoint, values, why) -> None:  # type: ignore[no-untyped-def]
    with respx.mock(assert_all_called=False) as router:
        route = router.get(url__startswith=API).mock(return_value=httpx.Response(200, json={}))
        with pytest.raises(InvalidQuery, match=why):
            list(walk(_client(), endpoint, **values))
        assert route.call_count == 0


def test_good_parameters_become_the_strings_colorme_reads() -> None:
    query = SALES.query(after=NOW, before=NOW + timedelta(hours=1), ids=[3, 4], paid=True, limit=100, offset=0)
    assert query == {"after": "2026-11-20 12:00:00", "before": "2026-11-20 13:00:00", "ids": "3,4",
                     "paid": "true", "limit": "100", "offset": "0"}
    assert PRODUCTS.query(sort=["-update_date", "make_date"], update_date_min="2026-11-01") == {
        "sort": "-update_date,make_date", "update_date_min": "2026-11-01"}


def _sale(buyer: dict[str, Any]) -> dict[str, Any]:
    return {"id": 90000001, "make_date": 1763600000, "update_date": 1763600100, "total_price": 3300,
            "customer": buyer, "details": [{"product_id": 100001, "product_name": "珈琲", "price": 3000,
                                            "price_with_tax": 3300, "product_num": 1}]}


def test_a_guest_buyer_is_keyed_by_email_and_a_member_by_id() -> None:
    guest = mapping.order(_sale({"id": 7000001, "member": False, "mail": " Guest@Example.jp ", "name": "田中 葵"}))
    member = mapping.order(_sale({"id": 5000001, "member": True, "mail": "m@example.jp"}))
    nobody = mapping.order(_sale({"member": False, "mail": ""}))
    assert guest.customer_external_id == "guest:guest@example.jp" and guest.guest is not None
    assert guest.guest.is_guest and guest.guest.email == "Guest@Example.jp" and not guest.guest.email_consent
    assert member.customer_external_id == "5000001" and member.guest is None
    assert nobody.customer_external_id is None and nobody.guest is None


def test_hidden_and_members_only_products_are_not_visible() -> None:
    states = {s: mapping.product({"id": 1, "display_state": s}, "https://s", {}).visible
              for s in ("showing", "hidden", "showing_for_members", "sale_for_members")}
    assert states == {"showing": True, "hidden": False, "showing_for_members": False, "sale_for_members": True}


@respx.mock
def test_a_non_member_in_the_customer_list_is_a_guest_keyed_by_email() -> None:
    rows = [{"id": 5000001, "member": True, "mail": "m@example.jp", "points": 30, "update_date": 1763600000},
            {"id": 7000001, "member": False, "mail": "G@example.jp", "points": 0, "update_date": 1763600000},
            {"id": 7000002, "member": False, "mail": "", "update_date": 1763600000}]
    respx.get(f"{API}/v1/customers.json").mock(return_value=httpx.Response(
        200, json={"customers": rows, "meta": {"total": 3, "limit": 100, "offset": 0}}))
    records = list(ColorMeConnector(_client(), NOW).iter_customers(None))
    assert [(r.external_id, r.is_guest, r.points_balance) for r in records] == [
        ("5000001", False, 30), ("guest:g@example.jp", True, 0)]


@respx.mock
def test_a_listing_without_meta_is_walked_until_a_short_page() -> None:
    rows = [{"id": 1000 + i, "mail": f"c{i}@example.jp", "update_date": 1763600000} for i in range(150)]

    def page(request: httpx.Request) -> httpx.Response:
        offset = int(request.url.params["offset"])
        return httpx.Response(200, json={"customers": rows[offset:offset + 100]})

    respx.get(f"{API}/v1/customers.json").mock(side_effect=page)
    assert len(list(ColorMeConnector(_client(), NOW).iter_customers(None))) == 150

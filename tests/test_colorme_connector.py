"""The ColorMe connector against ColorMe-shaped HTTP answers (respx): paging, windows, errors."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
import respx

from connectors.colorme.client import ColorMeClient
from connectors.colorme.oauth import exchange_code
from connectors.colorme.sync import ColorMeConnector
from connectors.errors import BadResponse, ProviderDown, Unauthorized
from connectors.ratelimit import SlidingWindowLimiter

API = "https://api.shop-pro.jp"
NOW = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)


def _client() -> ColorMeClient:
    return ColorMeClient(API, "token", sleep=lambda _s: None)


def _customer(i: int) -> dict[str, object]:
    return {"id": i, "account_id": "PA01234567", "name": "山田 太郎", "mail": f"c{i}@example.jp",
            "receive_mail_magazine": i % 2 == 0, "points": 120, "update_date": 1763600000}


@respx.mock
def test_customers_are_read_page_by_page_until_meta_total() -> None:
    def page(start: int, stop: int) -> httpx.Response:
        meta = {"total": 150, "limit": 100, "offset": start}
        return httpx.Response(200, json={"customers": [_customer(i) for i in range(start, stop)], "meta": meta})

    route = respx.get(f"{API}/v1/customers.json").mock(side_effect=[page(0, 100), page(100, 150)])
    customers = list(ColorMeConnector(_client(), NOW).iter_customers(None))
    assert len(customers) == 150 and route.call_count == 2
    assert route.calls[1].request.url.params["offset"] == "100"
    assert route.calls[0].request.headers["Authorization"] == "Bearer token"
    assert customers[0].email_consent is True and customers[1].email_consent is False
    assert customers[0].points_balance == 120


@respx.mock
def test_order_backfill_always_sends_explicit_date_windows() -> None:
    route = respx.get(f"{API}/v1/sales.json").mock(
        return_value=httpx.Response(200, json={"sales": [], "meta": {"total": 0, "limit": 100, "offset": 0}}))
    list(ColorMeConnector(_client(), NOW).iter_orders(None, NOW - timedelta(days=90)))
    windows = [(c.request.url.params["after"], c.request.url.params["before"]) for c in route.calls]
    assert len(windows) == 3  # 90 days in 31-day windows: never the API's 7-day default
    assert windows[-1][1] == "2026-11-20 12:00:00"  # Japan time


@respx.mock
def test_incremental_order_sync_asks_for_changes_since_the_cursor_with_overlap() -> None:
    route = respx.get(f"{API}/v1/sales.json").mock(
        return_value=httpx.Response(200, json={"sales": [], "meta": {"total": 0}}))
    list(ColorMeConnector(_client(), NOW).iter_orders(NOW - timedelta(hours=1), NOW - timedelta(days=400)))
    assert route.calls[0].request.url.params["update_date_min"] == "2026-11-20 10:50:00"


@respx.mock
def test_server_errors_are_retried_then_succeed() -> None:
    route = respx.get(f"{API}/v1/shop.json").mock(side_effect=[
        httpx.Response(503), httpx.ConnectTimeout("slow"),
        httpx.Response(200, json={"shop": {"id": "PA01234567", "title": "テスト商店", "url": "https://t.shop-pro.jp"}})])
    assert ColorMeConnector(_client(), NOW).fetch_shop().name == "テスト商店"
    assert route.call_count == 3


@respx.mock
def test_a_platform_that_stays_down_raises_provider_down() -> None:
    respx.get(f"{API}/v1/shop.json").mock(return_value=httpx.Response(500))
    with pytest.raises(ProviderDown):
        ColorMeConnector(_client(), NOW).fetch_shop()


@respx.mock
def test_revoked_token_raises_unauthorized_with_colorme_message() -> None:
    respx.get(f"{API}/v1/shop.json").mock(return_value=httpx.Response(
        401, json={"errors": [{"code": 401010, "message": "認証に失敗しました", "status": 401}]}))
    with pytest.raises(Unauthorized, match="401010"):
        ColorMeConnector(_client(), NOW).fetch_shop()


@respx.mock
def test_body_that_is_not_the_documented_shape_is_a_bad_response() -> None:
    respx.get(f"{API}/v1/products.json").mock(return_value=httpx.Response(200, json={"items": []}))
    respx.get(f"{API}/v1/shop.json").mock(return_value=httpx.Response(200, json={"shop": {"id": "PA1", "url": ""}}))
    respx.get(f"{API}/v1/categories.json").mock(return_value=httpx.Response(200, json={"categories": []}))
    with pytest.raises(BadResponse):
        list(ColorMeConnector(_client(), NOW).iter_products(None))


@respx.mock
def test_code_exchange_error_is_reported_not_retried() -> None:
    route = respx.post(f"{API}/oauth/token").mock(return_value=httpx.Response(
        401, json={"error": "invalid_client", "error_description": "クライアント認証に失敗"}))
    with pytest.raises(Unauthorized, match="invalid_client"):
        exchange_code(API, "cid", "bad", "code", "https://app/cb")
    assert route.call_count == 1


def test_limiter_holds_calls_to_the_per_minute_budget() -> None:
    now, slept = [0.0], []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    limiter = SlidingWindowLimiter(3, 60.0, now=lambda: now[0], sleep=sleep)
    for _ in range(4):
        limiter.acquire()
    assert slept == [60.0]

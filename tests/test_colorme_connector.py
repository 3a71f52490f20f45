"""The ColorMe connector and descriptor against ColorMe-shaped HTTP answers (respx): paging, windows, errors, script tags."""
from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import respx

from connectors.colorme import PLATFORM
from connectors.colorme.client import ColorMeClient
from connectors.colorme.oauth import exchange_code
from connectors.colorme.platform import ColorMePlatform
from connectors.colorme.sync import ColorMeConnector
from connectors.errors import BadResponse, BadSignature, ProviderDown, Unauthorized
from connectors.ratelimit import SlidingWindowLimiter
from connectors.signatures import hmac_sha256_b64
from connectors.storefront import InvalidEvent
from plugin.platforms import check_platform_settings
from plugin.settings import ConfigError, Settings, load_settings

API = "https://api.shop-pro.jp"
NOW = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)


def _client() -> ColorMeClient:
    return ColorMeClient(API, "token", sleep=lambda _s: None)


def _customer(i: int) -> dict[str, object]:
    return {"id": i, "account_id": "PA01234567", "name": "山田 太郎", "mail": f"c{i}@example.jp",
            "receive_mail_magazine": i % 2 == 0, "points": 120, "update_date": 1763600000}


@respx.mock
def test_customers_are_read_page_by_page_until_meta_total() -> None:
    def page(request: httpx.Request) -> httpx.Response:
        start = int(request.url.params["offset"])
        meta = {"total": 150, "limit": 100, "offset": start}
        return httpx.Response(200, json={"customers": [_customer(i) for i in range(start, min(start + 100, 150))],
                                         "meta": meta})

    route = respx.get(f"{API}/v1/customers.json").mock(side_effect=page)
    customers = list(ColorMeConnector(_client(), NOW).iter_customers(None))
    assert len(customers) == 150 and route.call_count == 2
    assert route.calls[1].request.url.params["offset"] == "99"  # each page starts on the last one's last row
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


def _platform() -> ColorMePlatform:
    return PLATFORM.configured({"COLORME_API_BASE": API, "COLORME_WEBHOOK_SECRET": "whsecret"})


@respx.mock
def test_script_tag_is_registered_updated_and_removed_with_the_scripts_integrity() -> None:
    # Given ColorMe's script-tag endpoints
    created = respx.post(f"{API}/appstore/v1/script_tags.json").mock(
        return_value=httpx.Response(201, json={"script_tag": {"id": 7}}))
    updated = respx.put(f"{API}/appstore/v1/script_tags/7.json").mock(
        return_value=httpx.Response(200, json={"script_tag": {"id": 7}}))
    removed = respx.delete(f"{API}/appstore/v1/script_tags/7.json").mock(return_value=httpx.Response(204))
    platform = _platform()
    connector = platform.open_connector("token", NOW)
    # When the script is registered, moved and removed
    script_id = platform.register_script(connector, "https://okaeri/storefront/colorme.js?key=k")
    platform.update_script(connector, script_id, "https://okaeri/storefront/colorme.js?key=k2")
    platform.remove_script(connector, script_id)
    connector.close()
    # Then each call carries the tag ColorMe documents, pinned to the script's bytes
    body = json.loads(created.calls[0].request.content)["script_tag"]
    digest = base64.b64encode(hashlib.sha384(platform.script_body().encode()).digest()).decode()
    assert script_id == "7" and body["integrity"] == f"sha384-{digest}" and body["display_scope"] == "shop"
    assert json.loads(updated.calls[0].request.content)["script_tag"]["src"].endswith("key=k2")
    assert removed.call_count == 1


def test_install_hook_is_verified_with_the_configured_secret() -> None:
    hook = _platform().hooks["install"]
    body = b'{"account_id": "PA12345678", "mail": "o@example.jp"}'
    assert hook(body, {"X-Appstore-Signature": hmac_sha256_b64("whsecret", body)}).account == "PA12345678"
    with pytest.raises(BadSignature):
        hook(body, {"X-Appstore-Signature": hmac_sha256_b64("other", body)})


def test_a_beacon_becomes_a_platform_neutral_event() -> None:
    body = (b'{"type": "basket", "visitor": "v-0123456789abcdefghijk", "customer_id": "12", "occurred_at": 1763600000,'
            b' "items": [{"id": "9", "quantity": 2, "price": 800}]}')
    event = PLATFORM.parse_event(body)
    assert event.kind == "basket" and event.items[0].product_id == "9" and event.occurred_at == datetime.fromtimestamp(
        1763600000, UTC)
    with pytest.raises(InvalidEvent, match="not JSON"):
        PLATFORM.parse_event(b"{nope")
    with pytest.raises(InvalidEvent, match="unix time"):
        PLATFORM.parse_event(b'{"type": "basket", "visitor": "v-0123456789abcdefghijk", "occurred_at": 99999999999999999}')


def test_colorme_reads_its_own_variables_and_the_generic_settings_pass_them_on(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("COLORME_REQUESTS_PER_MINUTE", "30")
    settings = Settings(COLORME_CLIENT_ID="from-kwargs")  # type: ignore[call-arg]
    config = PLATFORM.configured(settings.platform_settings).config
    assert (config.client_id, config.requests_per_minute, config.api_base) == ("from-kwargs", 30, API)
    with pytest.raises(ConfigError, match="COLORME_API_BASE"):
        check_platform_settings(load_settings(COLORME_API_BASE="ftp://nope"))

"""The Shopify connector's sync (issue 15 item 4): a first sync by bulk operation streamed from its
JSONL, an incremental sync by paged queries from the cursor, and a refusal for protected customer
data reported as such. HTTP is mocked in Shopify's documented shapes."""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import respx

from connectors.shopify.connector import ShopifyConnector
from connectors.shopify.graphql import API_VERSION, AccessDenied, GraphQLClient

SHOP = "tokyo-tea.myshopify.com"
URL = f"https://{SHOP}/admin/api/{API_VERSION}/graphql.json"
RESULT = "https://storage.googleapis.com/shopify-tiers-assets-prod-us-east1/bulk-result.jsonl"
NOW = datetime(2026, 12, 2, 4, 0, tzinfo=UTC)
COST = {"cost": {"requestedQueryCost": 10, "throttleStatus": {"maximumAvailable": 2000, "currentlyAvailable": 1990,
                                                               "restoreRate": 100}}}


def _data(data: dict[str, Any]) -> httpx.Response:
    return httpx.Response(200, json={"data": data, "extensions": COST})


def _connector() -> tuple[ShopifyConnector, list[float]]:
    waits: list[float] = []
    return ShopifyConnector(GraphQLClient(SHOP, lambda: "shpat_1", sleep=waits.append), NOW, sleep=waits.append), waits


def _bodies(route: respx.Route) -> list[dict[str, Any]]:
    return [json.loads(call.request.content) for call in route.calls]


@respx.mock
def test_a_first_sync_runs_a_bulk_operation_and_streams_its_lines_into_orders() -> None:
    lines = [{"id": "gid://shopify/Order/1", "createdAt": "2026-11-01T00:00:00Z", "updatedAt": "2026-11-01T00:00:00Z",
              "customer": {"id": "gid://shopify/Customer/42"},
              "currentTotalPriceSet": {"shopMoney": {"amount": "2400", "currencyCode": "JPY"}}},
             {"id": "gid://shopify/LineItem/11", "name": "煎茶", "quantity": 2, "product": {"id": "gid://shopify/Product/7"},
              "originalUnitPriceSet": {"shopMoney": {"amount": "1200", "currencyCode": "JPY"}},
              "__parentId": "gid://shopify/Order/1"},
             {"id": "gid://shopify/Order/2", "createdAt": "2026-11-02T00:00:00Z", "updatedAt": "2026-11-02T00:00:00Z",
              "customer": None, "cancelledAt": "2026-11-03T00:00:00Z",
              "currentTotalPriceSet": {"shopMoney": {"amount": "0", "currencyCode": "JPY"}}}]
    op = "gid://shopify/BulkOperation/720918"
    graphql = respx.post(URL).mock(side_effect=[
        _data({"bulkOperationRunQuery": {"bulkOperation": {"id": op, "status": "CREATED"}, "userErrors": []}}),
        _data({"node": {"id": op, "status": "RUNNING", "objectCount": "1"}}),
        _data({"node": {"id": op, "status": "COMPLETED", "objectCount": "3", "url": RESULT}})])
    respx.get(RESULT).respond(200, content="\n".join(json.dumps(line) for line in lines).encode() + b"\n")
    connector, waits = _connector()
    orders = list(connector.iter_orders(None, NOW - timedelta(days=730)))
    # Then both orders arrive with their lines; the bulk query asked for the history window, grouped
    assert [(o.external_id, o.customer_external_id, o.canceled, len(o.lines)) for o in orders] == [
        ("1", "42", False, 1), ("2", None, True, 0)]
    run = _bodies(graphql)[0]
    assert "groupObjects: true" in run["query"] and "created_at:>='2024-12-02T04:00:00Z'" in run["variables"]["query"]
    assert waits == [1.0]  # polled once while RUNNING


@respx.mock
def test_a_bulk_operation_that_found_nothing_yields_nothing() -> None:
    op = "gid://shopify/BulkOperation/1"
    respx.post(URL).mock(side_effect=[
        _data({"bulkOperationRunQuery": {"bulkOperation": {"id": op, "status": "CREATED"}, "userErrors": []}}),
        _data({"node": {"id": op, "status": "COMPLETED", "objectCount": "0", "url": None}})])
    connector, _ = _connector()
    assert list(connector.iter_customers(None)) == []


@respx.mock
def test_a_bulk_query_denied_for_protected_customer_data_is_access_denied() -> None:
    op = "gid://shopify/BulkOperation/2"
    respx.post(URL).mock(side_effect=[
        _data({"bulkOperationRunQuery": {"bulkOperation": {"id": op, "status": "CREATED"}, "userErrors": []}}),
        _data({"node": {"id": op, "status": "FAILED", "errorCode": "ACCESS_DENIED"}})])
    connector, _ = _connector()
    with pytest.raises(AccessDenied):
        list(connector.iter_customers(None))


@respx.mock
def test_an_incremental_sync_pages_from_the_cursor_minus_the_overlap() -> None:
    page = {"nodes": [{"id": "gid://shopify/Customer/1", "email": "a@example.jp", "updatedAt": "2026-12-01T00:00:00Z",
                       "emailMarketingConsent": {"marketingState": "SUBSCRIBED"}}],
            "pageInfo": {"hasNextPage": True, "endCursor": "eyJsYXN0X2lkIjox"}}
    last = {"nodes": [{"id": "gid://shopify/Customer/2", "email": "b@example.jp", "updatedAt": "2026-12-01T01:00:00Z"}],
            "pageInfo": {"hasNextPage": False, "endCursor": "eyJsYXN0X2lkIjoy"}}
    graphql = respx.post(URL).mock(side_effect=[_data({"customers": page}), _data({"customers": last})])
    connector, _ = _connector()
    people = list(connector.iter_customers(datetime(2026, 12, 1, 0, 10, tzinfo=UTC)))
    assert [(p.external_id, p.email_consent) for p in people] == [("1", True), ("2", False)]
    first, second = (b["variables"] for b in _bodies(graphql))
    assert first == {"after": None, "search": "updated_at:>='2026-12-01T00:00:00Z'"}
    assert second["after"] == "eyJsYXN0X2lkIjox"


@respx.mock
def test_the_shop_is_named_by_its_myshopify_domain_with_its_zone_and_address() -> None:
    respx.post(URL).mock(return_value=_data({"shop": {
        "id": "gid://shopify/Shop/1", "name": "東京茶舗", "myshopifyDomain": SHOP, "email": "owner@tokyo-tea.jp",
        "currencyCode": "JPY", "ianaTimezone": "Asia/Tokyo", "primaryDomain": {"url": "https://tokyo-tea.jp/"},
        "billingAddress": {"zip": "150-0043", "province": "東京都", "city": "渋谷区", "address1": "道玄坂1-2-3"}}}))
    connector, _ = _connector()
    info, address = connector.shop_with_address()
    assert (info.external_id, info.domain, info.timezone) == (SHOP, "https://tokyo-tea.jp", "Asia/Tokyo")
    assert address == "〒150-0043 東京都 渋谷区 道玄坂1-2-3"

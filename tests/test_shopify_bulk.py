"""A Shopify bulk export read as a stream (issue 15 item 4): parents with their children, records
the sync stores, and a file that would be misread is refused rather than half-read."""
from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from connectors.errors import BadResponse
from connectors.shopify import mapping
from connectors.shopify.bulk import read_grouped


def _lines(*objects: dict[str, object]) -> list[bytes]:
    return [json.dumps(o).encode() for o in objects]


PRODUCT = {"id": "gid://shopify/Product/7", "title": "ほうじ茶 100g", "handle": "hojicha-100g", "status": "ACTIVE",
           "productType": "お茶", "updatedAt": "2026-11-30T10:00:00Z", "onlineStoreUrl": None,
           "featuredImage": {"url": "https://cdn.shopify.com/s/files/hojicha.jpg"}}
VARIANTS = [{"id": "gid://shopify/ProductVariant/71", "sku": "HJ-100", "price": "1280", "inventoryQuantity": 3,
             "__parentId": "gid://shopify/Product/7"},
            {"id": "gid://shopify/ProductVariant/72", "sku": "HJ-100-3", "price": "3600", "inventoryQuantity": -2,
             "__parentId": "gid://shopify/Product/7"}]
ORDER = {"id": "gid://shopify/Order/5001", "createdAt": "2026-11-01T03:00:00Z", "updatedAt": "2026-11-02T03:00:00Z",
         "cancelledAt": None, "customer": {"id": "gid://shopify/Customer/42"},
         "currentTotalPriceSet": {"shopMoney": {"amount": "2560.0", "currencyCode": "JPY"}}}
LINE = {"id": "gid://shopify/LineItem/9", "name": "ほうじ茶 100g", "quantity": 2, "product": {"id": "gid://shopify/Product/7"},
        "originalUnitPriceSet": {"shopMoney": {"amount": "1280.0", "currencyCode": "JPY"}},
        "__parentId": "gid://shopify/Order/5001"}


def test_a_product_arrives_with_its_variants_as_one_record() -> None:
    [item] = list(read_grouped(_lines(PRODUCT, *VARIANTS)))
    record = mapping.product(item, "https://tokyo-tea.example")
    assert (record.external_id, record.code, record.group_code, record.price) == ("7", "HJ-100", "hojicha-100g", 1280)
    # oversold variants count as none left, not as negative stock
    assert record.stock == 3 and record.visible and record.url == "https://tokyo-tea.example/products/hojicha-100g"


def test_a_dollar_shops_prices_are_read_in_its_currency_not_as_yen() -> None:
    # Shopify's product names no currency: a variant's price is in the shop's
    dollars = [{**variant, "price": "19.99"} for variant in VARIANTS]
    [item] = list(read_grouped(_lines(PRODUCT, *dollars)))
    record = mapping.product(item, "https://tokyo-tea.example", "USD")
    assert (record.price, record.currency) == (1999, "USD")


def test_an_order_arrives_with_its_lines_and_its_customer() -> None:
    customer = {"id": "gid://shopify/Customer/42", "email": " hanako@example.jp ", "firstName": "花子",
                "lastName": "山田", "updatedAt": "2026-11-30T00:00:00Z",
                "emailMarketingConsent": {"marketingState": "SUBSCRIBED", "marketingOptInLevel": "SINGLE_OPT_IN"}}
    items = list(read_grouped(_lines(customer, ORDER, LINE)))
    person, order = mapping.customer(items[0].data), mapping.order(items[1])
    assert (person.external_id, person.email, person.name, person.email_consent) == ("42", "hanako@example.jp",
                                                                                      "山田 花子", True)
    assert (order.customer_external_id, order.total, order.canceled) == ("42", 2560, False)
    assert [(ln.product_external_id, ln.unit_price, ln.quantity) for ln in order.lines] == [("7", 1280, 2)]
    assert order.ordered_at == datetime(2026, 11, 1, 3, tzinfo=UTC)


@pytest.mark.parametrize(("state", "consent"), [("SUBSCRIBED", True), ("UNSUBSCRIBED", False), ("PENDING", False),
                                                ("NOT_SUBSCRIBED", False), (None, False)])
def test_only_a_subscribed_customer_counts_as_consenting_to_mail(state: str | None, consent: bool) -> None:
    node = {"id": "gid://shopify/Customer/1", "updatedAt": "2026-11-30T00:00:00Z",
            "emailMarketingConsent": {"marketingState": state} if state else None}
    assert mapping.customer(node).email_consent is consent


def test_money_keeps_yen_whole_and_other_currencies_in_cents() -> None:
    assert mapping.money("1280.0", "JPY") == 1280 and mapping.money("12.345", "USD") == 1235


def test_a_child_that_is_not_under_its_parent_is_refused_rather_than_dropped() -> None:
    with pytest.raises(BadResponse, match="groupObjects"):
        list(read_grouped(_lines(PRODUCT, ORDER, VARIANTS[0])))


@pytest.mark.parametrize("line", [b"{not json", b"[1, 2]", b'{"id": "shopify-7"}', b'{"id": "gid://shopify/Product/7x"}'])
def test_a_broken_line_stops_the_read_with_its_line_number(line: bytes) -> None:
    with pytest.raises(BadResponse, match="line 2|global id"):
        list(read_grouped([json.dumps(PRODUCT).encode(), line]))


def test_blank_lines_and_a_product_without_variants_are_read() -> None:
    [item] = list(read_grouped([b"", json.dumps(PRODUCT).encode(), b"\n"]))
    assert mapping.product(item, "").stock is None and mapping.product(item, "").url == ""

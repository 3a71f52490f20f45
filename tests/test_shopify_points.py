"""Points on Shopify (issue 15 item 5): Shopify has none, so the merchant names a customer metafield
holding the balance (and optionally one with the expiry date) on the settings page; sync reads them.
Until one is named, the point presets are unavailable and say why."""
from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlmodel import col

from connectors.shopify import queries
from connectors.shopify.mapping import points_balance, points_expiry
from plugin.console.scenarios import set_standard_scenarios
from plugin.demo.sandbox.shopify_admin import generate_shop
from plugin.runtime import Runtime
from plugin.storage.models import Customer, PointFields, Shop
from plugin.storage.point_fields import NO_FIELD_REASON
from plugin.sync.run import run_sync
from plugin.web.app import create_app
from plugin.web.deps import SESSION_COOKIE, session_cookie
from tests.factories import make_shop
from tests.shopify_support import SHOP, SandboxShopify, shopify_runtime, shopify_shop


@pytest.fixture
def console(settings, engine, clock, broker, session) -> Iterator[tuple[TestClient, Runtime, Shop]]:  # type: ignore[no-untyped-def]
    runtime = shopify_runtime(settings, engine, clock, broker)
    shop = shopify_shop(session, clock.now())
    client = TestClient(create_app(runtime))
    client.cookies.set(SESSION_COOKIE, session_cookie(runtime, shop.id or 0))
    sandbox = generate_shop(SHOP, "shpat_sandbox", customers=4, products=3, orders=6, now=clock.now())
    by_id = {c["id"]: c for c in sandbox.customers}
    by_id["gid://shopify/Customer/1"]["metafields"] = {"loyalty.points": "1200", "loyalty.expires_on": "2027-01-31"}
    by_id["gid://shopify/Customer/2"]["metafields"] = {"loyalty.points": "350.0"}
    SandboxShopify.sandbox = sandbox
    yield client, runtime, shop
    runtime.close_channels()


def _csrf(runtime: Runtime, shop: Shop) -> str:
    return runtime.signer.dumps({"shop": shop.id}, "csrf")


def test_without_a_named_metafield_the_point_presets_are_unavailable_and_say_why(console, session, clock) -> None:  # type: ignore[no-untyped-def]
    client, runtime, shop = console
    # Given a synced Shopify shop whose merchant named no point field
    run_sync(runtime, shop.id or 0, full=True)
    # When the merchant presses the one switch
    reasons = set_standard_scenarios(session, shop, True, clock.now())
    session.commit()
    # Then both point presets stay off, saying which setting is missing; the settings page shows it too
    assert reasons["point_expiry"] == reasons["point_statement"] == NO_FIELD_REASON
    assert reasons["cart_recovery"] is None
    page = client.get("/app/settings").text
    assert "ポイント残高を持つ顧客メタフィールド" in page and 'id="balance-field"' in page
    assert "no customer metafield (namespace.key) holding the point balance" in client.get("/app/settings?lang=en").text


def test_a_named_balance_and_expiry_metafield_are_read_by_sync(console, session, clock) -> None:  # type: ignore[no-untyped-def]
    client, runtime, shop = console
    # When the merchant names the fields on the settings page
    saved = client.post("/app/settings/point-fields", data={"csrf": _csrf(runtime, shop), "balance_field": "loyalty.points",
                                                          "expiry_field": "loyalty.expires_on"}, follow_redirects=False)
    assert saved.status_code == 303
    run_sync(runtime, shop.id or 0, full=True)
    # Then sync reads each customer's balance and expiry from them
    rows = dict(session.execute(select(Customer.external_id, Customer.points_balance)).tuples().all())
    assert (rows["1"], rows["2"], rows["3"]) == (1200, 350, 0)
    first = session.execute(select(Customer).where(col(Customer.external_id) == "1")).scalar_one()
    assert first.points_expire_at is not None
    assert first.points_expire_at.replace(tzinfo=UTC) == datetime(2027, 1, 31, tzinfo=UTC)
    # And the point presets can be switched on
    reasons = set_standard_scenarios(session, shop, True, clock.now())
    assert reasons["point_statement"] is None and reasons["point_expiry"] is None
    assert "loyalty.points" in client.get("/app/settings").text


def test_without_an_expiry_field_points_expire_by_the_shop_rule_after_the_last_order(console, session, clock) -> None:  # type: ignore[no-untyped-def]
    client, runtime, shop = console
    client.post("/app/settings/point-fields", data={"csrf": _csrf(runtime, shop), "balance_field": "loyalty.points"})
    run_sync(runtime, shop.id or 0, full=True)
    customer = session.execute(select(Customer).where(col(Customer.external_id) == "1")).scalar_one()
    assert customer.points_balance == 1200
    if customer.last_order_at is not None:  # the rule: Shop.points_expiry_months after the last order
        assert customer.points_expire_at is not None and customer.points_expire_at > customer.last_order_at


@pytest.mark.parametrize("balance, expiry", [("points", ""), ("loyalty.points;drop", ""), ("", "loyalty.expires"),
                                             ("ロイヤルティ.points", "")])
def test_a_malformed_field_is_refused_with_the_reason_and_nothing_is_stored(console, session, balance, expiry) -> None:  # type: ignore[no-untyped-def]
    client, runtime, shop = console
    response = client.post("/app/settings/point-fields", data={"csrf": _csrf(runtime, shop), "balance_field": balance,
                                                             "expiry_field": expiry})
    assert response.status_code == 422
    assert "namespace.key" in response.text or "残高のフィールドも" in response.text
    held = session.get(PointFields, shop.id)
    assert held is None or held.balance_field == ""


def test_a_forged_form_is_refused(console, session) -> None:  # type: ignore[no-untyped-def]
    client, _, shop = console
    response = client.post("/app/settings/point-fields", data={"csrf": "forged", "balance_field": "loyalty.points"})
    assert response.status_code == 403
    assert session.get(PointFields, shop.id) is None


def test_a_platform_with_native_points_has_no_point_field_setting(console, session, clock) -> None:  # type: ignore[no-untyped-def]
    client, runtime, _ = console
    other = make_shop(session, clock.now())  # a ColorMe shop: points come from the platform
    client.cookies.set(SESSION_COOKIE, session_cookie(runtime, other.id or 0))
    assert 'id="balance-field"' not in client.get("/app/settings").text
    refused = client.post("/app/settings/point-fields", data={"csrf": _csrf(runtime, other), "balance_field": "loyalty.points"})
    assert refused.status_code == 404


def test_metafield_values_are_read_leniently() -> None:
    assert [points_balance({"value": v}) for v in ("1200", "99.9", "-5", "abc", "")] == [1200, 99, 0, 0, 0]
    assert points_balance(None) == 0
    assert points_expiry({"value": "2027-03-31"}) == datetime(2027, 3, 31, tzinfo=UTC)
    assert points_expiry({"value": "2027-03-31T15:00:00+09:00"}) == datetime(2027, 3, 31, 6, tzinfo=UTC)
    assert points_expiry({"value": "soon"}) is None and points_expiry(None) is None


def test_a_metafield_name_never_reaches_a_query_unchecked() -> None:
    assert 'pointsBalance: metafield(namespace: "loyalty", key: "points") { value }' in queries.point_fields("loyalty.points")
    with pytest.raises(ValueError):
        queries.point_fields('loyalty.points") { value } } evil: shop { id')
    assert queries.point_fields("") == ""

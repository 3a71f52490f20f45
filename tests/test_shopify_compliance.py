"""Shopify's mandatory compliance webhooks (issue 15 item 3): a data request becomes a JSON export the
merchant downloads from the console; customers/redact and shop/redact delete personal data for
real — rows, consent addresses, message addresses — while the shop's anonymous figures stay."""
from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlmodel import col

from plugin.demo.sandbox import shopify_webhooks as payloads
from plugin.gates import decisions
from plugin.runtime import Runtime
from plugin.storage.consent import record_consent
from plugin.storage.models import (
    Cart,
    ConsentRecord,
    Customer,
    DataExport,
    HookDelivery,
    InstallState,
    Message,
    MessageStatus,
    Order,
    Shop,
    Trigger,
)
from plugin.web.app import create_app
from plugin.web.deps import SESSION_COOKIE, session_cookie
from tests.factories import make_cart, make_customer, make_order, make_product, make_shop
from tests.shopify_support import SHOP, deliver, run_hooks, shopify_runtime, shopify_shop

COMPLIANCE = ["customers/data_request", "customers/redact", "shop/redact"]


@pytest.fixture
def hooks(settings, engine, clock, broker, session) -> Iterator[tuple[TestClient, Runtime, Shop]]:  # type: ignore[no-untyped-def]
    runtime = shopify_runtime(settings, engine, clock, broker)
    shop = shopify_shop(session, clock.now())
    client = TestClient(create_app(runtime))
    client.cookies.set(SESSION_COOKIE, session_cookie(runtime, shop.id or 0))
    yield client, runtime, shop
    runtime.close_channels()


def _customer_with_history(session, shop, now, number: int, email: str):  # type: ignore[no-untyped-def]
    customer = make_customer(session, shop, now, external_id=str(number), email=email, name="山田 花子",
                             line_user_id=f"U{number:032d}")
    product = make_product(session, shop, now)
    make_order(session, shop, customer, now - timedelta(days=3), [product])
    make_cart(session, shop, customer, [product], now)
    trigger = Trigger("cart", number, None)
    session.add(Message(shop_id=shop.id, customer_id=customer.id, scenario_key="cart_recovery", trigger_key=trigger.key,
                        trigger_kind=trigger.kind, trigger_ref=trigger.ref, trigger_step=trigger.step, to_address=email,
                        subject="山田 花子 様、カートに商品が残っています", decision=decisions.TREATMENT,
                        status=MessageStatus.sent, scheduled_at=now, created_at=now, sent_at=now))
    record_consent(session, shop.id, "email", email, True, "signup", now)
    session.commit()
    return customer


@pytest.mark.parametrize("topic", COMPLIANCE)
def test_a_compliance_delivery_with_a_bad_signature_gets_401(hooks, session, clock, topic) -> None:  # type: ignore[no-untyped-def]
    client, _, shop = hooks
    payload = {"customers/data_request": payloads.data_request_payload(SHOP, 7, "a@example.jp"),
               "customers/redact": payloads.customer_redact_payload(SHOP, 7, "a@example.jp"),
               "shop/redact": payloads.shop_redact_payload(SHOP)}[topic]
    response = deliver(client, topic, payload, signature="")
    assert response.status_code == 401
    assert session.execute(select(func.count()).select_from(HookDelivery)).scalar_one() == 0


def test_a_data_request_becomes_an_export_the_merchant_downloads_from_the_console(hooks, session, clock) -> None:  # type: ignore[no-untyped-def]
    client, runtime, shop = hooks
    _customer_with_history(session, shop, clock.now(), 7, "hanako@example.jp")
    # When Shopify forwards the customer's request
    deliver(client, "customers/data_request", payloads.data_request_payload(SHOP, 7, "hanako@example.jp", request_id=9999))
    run_hooks(runtime)
    # Then the console lists it, in Japanese and in English
    page = client.get("/app/data-requests")
    assert page.status_code == 200 and "お客様のデータ開示請求" in page.text and "9999" in page.text
    assert "Customer data requests" in client.get("/app/data-requests?lang=en").text
    assert 'href="/app/data-requests"' in client.get("/app/settings").text
    # And the download holds everything Okaeri has on that customer
    export = session.execute(select(DataExport)).scalar_one()
    download = client.get(f"/app/data-requests/{export.id}.json")
    assert download.status_code == 200
    assert download.headers["content-disposition"] == 'attachment; filename="data-request-9999.json"'
    body = json.loads(download.text)
    record = body["records"][0]
    assert (body["holds_data"], body["request_id"], record["customer"]["email"]) == (True, "9999", "hanako@example.jp")
    assert len(record["orders"]) == 1 and record["messages"][0]["to"] == "hanako@example.jp"
    assert [c["address"] for c in record["consent_records"]] == ["hanako@example.jp"]


def test_a_data_request_for_someone_okaeri_never_held_says_so(hooks, session, clock) -> None:  # type: ignore[no-untyped-def]
    client, runtime, shop = hooks
    deliver(client, "customers/data_request", payloads.data_request_payload(SHOP, 404, "nobody@example.jp"))
    run_hooks(runtime)
    export = session.execute(select(DataExport)).scalar_one()
    body = json.loads(client.get(f"/app/data-requests/{export.id}.json").text)
    assert (body["holds_data"], body["records"], body["customer_id"]) == (False, [], "404")


def test_another_shops_merchant_cannot_download_an_export(hooks, session, clock) -> None:  # type: ignore[no-untyped-def]
    client, runtime, shop = hooks
    _customer_with_history(session, shop, clock.now(), 7, "hanako@example.jp")
    deliver(client, "customers/data_request", payloads.data_request_payload(SHOP, 7, "hanako@example.jp"))
    run_hooks(runtime)
    export = session.execute(select(DataExport)).scalar_one()
    other = make_shop(session, clock.now())
    client.cookies.set(SESSION_COOKIE, session_cookie(runtime, other.id or 0))
    assert client.get(f"/app/data-requests/{export.id}.json").status_code == 404
    assert "9999" not in client.get("/app/data-requests").text


def test_customers_redact_deletes_the_personal_data_and_keeps_the_figures(hooks, session, clock) -> None:  # type: ignore[no-untyped-def]
    client, runtime, shop = hooks
    now = clock.now()
    gone = _customer_with_history(session, shop, now, 7, "hanako@example.jp")
    kept = _customer_with_history(session, shop, now, 8, "taro@example.jp")
    deliver(client, "customers/data_request", payloads.data_request_payload(SHOP, 7, "hanako@example.jp"))
    run_hooks(runtime)
    # When the shop owner asks Shopify to erase the customer
    deliver(client, "customers/redact", payloads.customer_redact_payload(SHOP, 7, "hanako@example.jp"))
    run_hooks(runtime)
    # Then the row holds nothing that finds a person, nor do messages, consent, carts or the export
    session.expire_all()
    erased = session.get(Customer, gone.id)
    assert erased is not None and (erased.email, erased.name, erased.line_user_id) == ("", "", None)
    assert erased.external_id != "7"
    addresses = session.execute(select(Message.to_address).where(col(Message.customer_id) == gone.id)).scalars().all()
    assert addresses == [""]
    assert session.execute(select(func.count()).select_from(ConsentRecord).where(
        col(ConsentRecord.address) == "hanako@example.jp")).scalar_one() == 0
    assert session.execute(select(func.count()).select_from(Cart).where(col(Cart.customer_id) == gone.id)).scalar_one() == 0
    assert session.execute(select(func.count()).select_from(DataExport)).scalar_one() == 0
    # And the anonymous figures stay; the other customer is untouched
    assert session.execute(select(func.count()).select_from(Order)).scalar_one() == 2
    other = session.get(Customer, kept.id)
    assert other is not None and other.email == "taro@example.jp"
    assert session.execute(select(func.count()).select_from(ConsentRecord).where(
        col(ConsentRecord.address) == "taro@example.jp")).scalar_one() == 1


def test_shop_redact_after_uninstall_erases_every_customer_and_the_shops_contacts(hooks, session, clock) -> None:  # type: ignore[no-untyped-def]
    client, runtime, shop = hooks
    now = clock.now()
    _customer_with_history(session, shop, now, 7, "hanako@example.jp")
    _customer_with_history(session, shop, now, 8, "taro@example.jp")
    other_shop = make_shop(session, now)
    bystander = make_customer(session, other_shop, now, email="hanako@example.jp")
    shop.state = InstallState.uninstalled
    session.add(shop)
    session.commit()
    # When Shopify sends shop/redact (48 hours after the uninstall)
    clock.advance(hours=48)
    deliver(client, "shop/redact", payloads.shop_redact_payload(SHOP))
    run_hooks(runtime)
    session.expire_all()
    emails = session.execute(select(Customer.email).where(col(Customer.shop_id) == shop.id)).scalars().all()
    assert emails == ["", ""]
    assert session.execute(select(func.count()).select_from(ConsentRecord).where(
        col(ConsentRecord.shop_id) == shop.id)).scalar_one() == 0
    assert session.execute(select(Message.to_address).where(col(Message.shop_id) == shop.id)).scalars().all() == ["", ""]
    refreshed = session.get(Shop, shop.id)
    assert refreshed is not None and (refreshed.owner_email, refreshed.access_token_encrypted) == ("", "")
    assert session.execute(select(func.count()).select_from(Order).where(col(Order.shop_id) == shop.id)).scalar_one() == 2
    # another shop's customer with the same address is not this shop's to erase
    untouched = session.get(Customer, bystander.id)
    assert untouched is not None and untouched.email == "hanako@example.jp"


def test_a_redact_by_email_also_erases_a_guest_buyers_row(hooks, session, clock) -> None:  # type: ignore[no-untyped-def]
    client, runtime, shop = hooks
    guest = make_customer(session, shop, clock.now(), external_id="guest:guest@example.jp", email="guest@example.jp",
                          is_guest=True)
    deliver(client, "customers/redact", {"shop_id": 1, "shop_domain": SHOP,
                                         "customer": {"id": None, "email": "guest@example.jp"}, "orders_to_redact": []})
    run_hooks(runtime)
    session.expire_all()
    row = session.get(Customer, guest.id)
    assert row is not None and row.email == ""

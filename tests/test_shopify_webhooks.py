"""Shopify webhooks at one endpoint (issue 15 item 3): verified on the raw body (401 otherwise,
whatever the topic), stored once per X-Shopify-Webhook-Id, applied by a worker, and never letting
an older payload overwrite newer data. Payloads are the REST shapes Shopify sends."""
from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlmodel import Session, col

from plugin.demo.sandbox import shopify_webhooks as payloads
from plugin.demo.sandbox.shopify_admin import generate_shop
from plugin.runtime import Runtime
from plugin.storage.models import Cart, CartLine, ConsentRecord, Customer, HookDelivery, Order, OrderLine, Product, Shop
from plugin.web.app import create_app
from tests.factories import make_customer, make_product
from tests.shopify_support import SHOP, SandboxShopify, deliver, run_hooks, shopify_runtime, shopify_shop

TOPICS = ["orders/create", "orders/updated", "checkouts/create", "checkouts/update", "products/update",
          "products/delete", "customers/create", "customers/update", "inventory_levels/update",
          "customers/data_request", "customers/redact", "shop/redact"]


@pytest.fixture
def hooks(settings, engine, clock, broker, session) -> Iterator[tuple[TestClient, Runtime, Shop]]:  # type: ignore[no-untyped-def]
    runtime = shopify_runtime(settings, engine, clock, broker)
    shop = shopify_shop(session, clock.now())
    yield TestClient(create_app(runtime)), runtime, shop
    runtime.close_channels()


def _payload(topic: str, now) -> dict:  # type: ignore[no-untyped-def]
    return {"orders/create": payloads.order_payload(1, 7, now), "orders/updated": payloads.order_payload(1, 7, now),
            "checkouts/create": payloads.checkout_payload(3, 7, now, shop=SHOP),
            "checkouts/update": payloads.checkout_payload(3, 7, now, shop=SHOP),
            "products/update": payloads.product_payload(1, now), "products/delete": {"id": 1},
            "customers/create": payloads.customer_payload(7, now), "customers/update": payloads.customer_payload(7, now),
            "inventory_levels/update": payloads.inventory_payload(10, 3, now),
            "customers/data_request": payloads.data_request_payload(SHOP, 7, "customer7@example.jp"),
            "customers/redact": payloads.customer_redact_payload(SHOP, 7, "customer7@example.jp"),
            "shop/redact": payloads.shop_redact_payload(SHOP)}[topic]


def _deliveries(session: Session) -> int:
    return session.execute(select(func.count()).select_from(HookDelivery)).scalar_one()


@pytest.mark.parametrize("topic", TOPICS)
def test_a_delivery_with_a_bad_signature_is_refused_with_401_and_nothing_is_stored(hooks, session, clock, topic) -> None:  # type: ignore[no-untyped-def]
    client, _, _ = hooks
    # When a delivery arrives signed with another secret (as App Store review checks, compliance topics included)
    response = deliver(client, topic, _payload(topic, clock.now()), signature="c2lnbmF0dXJlLW9mLWFub3RoZXItYXBw")
    # Then it is refused before anything is parsed or stored
    assert response.status_code == 401
    assert _deliveries(session) == 0


def test_a_delivery_signed_with_a_tampered_body_is_refused(hooks, session, clock) -> None:  # type: ignore[no-untyped-def]
    client, _, _ = hooks
    delivery = payloads.sign_delivery("customers/update", payloads.customer_payload(7, clock.now()), shop=SHOP,
                                      secret="shpss_test-app-secret")
    response = client.post("/shopify/webhooks", content=delivery.body.replace(b"customer7", b"attacker"),
                           headers=delivery.headers)
    assert response.status_code == 401
    assert _deliveries(session) == 0


@pytest.mark.parametrize("topic", TOPICS)
def test_a_signed_delivery_is_answered_at_once_and_applied_by_a_worker(hooks, session, clock, topic) -> None:  # type: ignore[no-untyped-def]
    client, runtime, shop = hooks
    SandboxShopify.sandbox = generate_shop(SHOP, "shpat_sandbox", customers=3, products=3, orders=0, now=clock.now())
    # When a well-signed delivery arrives
    response = deliver(client, topic, _payload(topic, clock.now()))
    # Then it is acknowledged and queued, and the worker applies it once (its body is not kept)
    assert response.status_code == 200, response.text
    assert response.json()["queued"] is True
    run_hooks(runtime)
    row = session.execute(select(HookDelivery)).scalar_one()
    assert row.applied_at is not None and row.body == "" and not row.outcome.startswith("refused"), row.outcome


@pytest.mark.parametrize("topic", TOPICS)
def test_a_repeated_delivery_is_processed_once(hooks, session, clock, topic) -> None:  # type: ignore[no-untyped-def]
    client, runtime, _ = hooks
    SandboxShopify.sandbox = generate_shop(SHOP, "shpat_sandbox", customers=3, products=3, orders=0, now=clock.now())
    payload = _payload(topic, clock.now())
    # When Shopify delivers the same webhook twice (its retry carries the same X-Shopify-Webhook-Id)
    first = deliver(client, topic, payload, webhook_id="b54557e4-bdd9-4b37-8a5f-bf7d70bcd043")
    run_hooks(runtime)
    second = deliver(client, topic, payload, webhook_id="b54557e4-bdd9-4b37-8a5f-bf7d70bcd043")
    run_hooks(runtime)
    # Then the second is acknowledged but queues nothing: one row, applied once
    assert (first.json()["queued"], second.status_code, second.json()["queued"]) == (True, 200, False)
    assert _deliveries(session) == 1


def test_a_customer_update_stores_the_consent_and_a_repeat_adds_no_consent_record(hooks, session, clock) -> None:  # type: ignore[no-untyped-def]
    client, runtime, shop = hooks
    payload = payloads.customer_payload(7, clock.now(), subscribed=True)
    for _ in range(2):
        deliver(client, "customers/update", payload, webhook_id="same-delivery")
        run_hooks(runtime)
    customer = session.execute(select(Customer).where(col(Customer.external_id) == "7")).scalar_one()
    assert (customer.email, customer.name, customer.email_consent) == ("customer7@example.jp", "山田 花子", True)
    records = session.execute(select(ConsentRecord).where(col(ConsentRecord.address) == "customer7@example.jp")).scalars().all()
    assert [(r.channel, r.consented) for r in records] == [("email", True)]


def test_an_unsubscribe_by_webhook_withdraws_consent_and_records_it(hooks, session, clock) -> None:  # type: ignore[no-untyped-def]
    client, runtime, shop = hooks
    deliver(client, "customers/create", payloads.customer_payload(7, clock.now() - timedelta(hours=1)))
    deliver(client, "customers/update", payloads.customer_payload(7, clock.now(), subscribed=False))
    run_hooks(runtime)
    customer = session.execute(select(Customer).where(col(Customer.external_id) == "7")).scalar_one()
    assert customer.email_consent is False
    records = session.execute(select(ConsentRecord.consented).where(col(ConsentRecord.address) == "customer7@example.jp")
                              .order_by(col(ConsentRecord.id))).scalars().all()
    assert records == [True, False]


def test_a_customer_webhook_keeps_the_synced_point_balance(hooks, session, clock) -> None:  # type: ignore[no-untyped-def]
    client, runtime, shop = hooks
    make_customer(session, shop, clock.now() - timedelta(days=1), external_id="7", points_balance=800)
    deliver(client, "customers/update", payloads.customer_payload(7, clock.now(), first_name="次郎"))
    run_hooks(runtime)
    customer = session.execute(select(Customer).where(col(Customer.external_id) == "7")).scalar_one()
    assert (customer.name, customer.points_balance) == ("山田 次郎", 800)


def test_an_older_customer_payload_arriving_after_a_newer_one_is_ignored(hooks, session, clock) -> None:  # type: ignore[no-untyped-def]
    client, runtime, _ = hooks
    now = clock.now()
    # Given the newer update arrived (and was applied) first
    deliver(client, "customers/update", payloads.customer_payload(7, now, first_name="新しい", subscribed=False))
    run_hooks(runtime)
    # When a retry of an older update arrives late
    deliver(client, "customers/update", payloads.customer_payload(7, now - timedelta(minutes=5), first_name="古い"),
            triggered_at=now - timedelta(minutes=5))
    run_hooks(runtime)
    # Then the newer data stays
    customer = session.execute(select(Customer).where(col(Customer.external_id) == "7")).scalar_one()
    assert (customer.name, customer.email_consent) == ("山田 新しい", False)


def test_an_older_product_payload_never_overwrites_a_newer_price(hooks, session, clock) -> None:  # type: ignore[no-untyped-def]
    client, runtime, _ = hooks
    now = clock.now()
    deliver(client, "products/update", payloads.product_payload(1, now, price="1500.00", stock=4))
    deliver(client, "products/update", payloads.product_payload(1, now - timedelta(minutes=3), price="900.00", stock=20))
    run_hooks(runtime)
    product = session.execute(select(Product).where(col(Product.external_id) == "1")).scalar_one()
    assert (product.price, product.stock, product.url) == (1500, 4, f"https://{SHOP}/products/sencha-1")


def test_an_order_updated_before_its_create_arrives_keeps_the_update(hooks, session, clock) -> None:  # type: ignore[no-untyped-def]
    client, runtime, shop = hooks
    now = clock.now()
    make_product(session, shop, now, external_id="1")
    make_customer(session, shop, now, external_id="7")
    # orders/updated (cancelled) arrives before orders/create (Shopify does not order deliveries)
    deliver(client, "orders/updated", payloads.order_payload(50, 7, now, cancelled=True, created_at=now - timedelta(hours=1)))
    deliver(client, "orders/create", payloads.order_payload(50, 7, now - timedelta(hours=1)))
    run_hooks(runtime)
    order = session.execute(select(Order).where(col(Order.external_id) == "50")).scalar_one()
    lines = session.execute(select(func.count()).select_from(OrderLine).where(col(OrderLine.order_id) == order.id)).scalar_one()
    assert (order.canceled, order.total, lines) == (True, 1200, 1)
    assert order.customer_id is not None


def test_a_deleted_product_is_closed_and_an_older_update_does_not_reopen_it(hooks, session, clock) -> None:  # type: ignore[no-untyped-def]
    client, runtime, shop = hooks
    now = clock.now()
    make_product(session, shop, now - timedelta(days=1), external_id="1")
    deliver(client, "products/delete", {"id": 1}, triggered_at=now)
    deliver(client, "products/update", payloads.product_payload(1, now - timedelta(minutes=10)),
            triggered_at=now - timedelta(minutes=10))
    run_hooks(runtime)
    product = session.execute(select(Product).where(col(Product.external_id) == "1")).scalar_one()
    assert (product.visible, product.deleted_at is not None) == (False, True)


def test_an_inventory_level_update_rereads_the_products_stock(hooks, session, clock) -> None:  # type: ignore[no-untyped-def]
    client, runtime, shop = hooks
    now = clock.now()
    sandbox = generate_shop(SHOP, "shpat_sandbox", customers=1, products=2, orders=0, now=now)
    SandboxShopify.sandbox = sandbox
    product = sandbox.products[0]
    for variant in product["variants"]:
        variant["inventoryQuantity"] = 0
    number = product["id"].rsplit("/", 1)[1]
    make_product(session, shop, now - timedelta(days=1), external_id=number, stock=0)
    # When the item comes back in stock (2 units at one location) and Shopify says so
    product["variants"][0]["inventoryQuantity"] = 2
    item = int(product["variants"][0]["id"].rsplit("/", 1)[1])
    deliver(client, "inventory_levels/update", payloads.inventory_payload(item, 2, now))
    run_hooks(runtime)
    # Then the stored product has the stock the API reports now, and the restock is noted (stock trigger)
    stored = session.execute(select(Product).where(col(Product.external_id) == number)).scalar_one()
    assert stored.stock == 2
    assert stored.restocked_at is not None


def test_an_abandoned_checkout_becomes_the_buyers_platform_cart_with_its_recovery_url(hooks, session, clock) -> None:  # type: ignore[no-untyped-def]
    client, runtime, shop = hooks
    now = clock.now()
    make_product(session, shop, now, external_id="1")
    make_product(session, shop, now, external_id="2")
    deliver(client, "checkouts/create", payloads.checkout_payload(3, 7, now - timedelta(minutes=5), shop=SHOP, products=(1,)))
    deliver(client, "checkouts/update", payloads.checkout_payload(3, 7, now, shop=SHOP, products=(1, 2)))
    run_hooks(runtime)
    cart = session.execute(select(Cart)).scalar_one()
    lines = session.execute(select(CartLine.product_external_id).where(col(CartLine.cart_id) == cart.id)
                            .order_by(col(CartLine.product_external_id))).scalars().all()
    buyer = session.get(Customer, cart.customer_id)
    assert (cart.source, cart.external_key, lines) == ("platform", "checkout:3", ["1", "2"])
    assert cart.recovery_url == f"https://{SHOP}/1/checkouts/{3:032x}/recover?key=k3"
    assert buyer is not None and (buyer.external_id, buyer.email_consent) == ("7", True)
    assert cart.revision == 2  # the items changed once: a new reminder trigger


def test_an_older_checkout_update_after_a_newer_one_leaves_the_cart_alone(hooks, session, clock) -> None:  # type: ignore[no-untyped-def]
    client, runtime, shop = hooks
    now = clock.now()
    make_product(session, shop, now, external_id="1")
    make_product(session, shop, now, external_id="2")
    deliver(client, "checkouts/update", payloads.checkout_payload(3, 7, now, shop=SHOP, products=(1, 2)))
    run_hooks(runtime)
    deliver(client, "checkouts/update", payloads.checkout_payload(3, 7, now - timedelta(minutes=5), shop=SHOP, products=(1,)))
    run_hooks(runtime)
    cart = session.execute(select(Cart)).scalar_one()
    lines = session.execute(select(func.count()).select_from(CartLine).where(col(CartLine.cart_id) == cart.id)).scalar_one()
    assert (lines, cart.revision) == (2, 1)


def test_a_completed_checkout_leaves_nothing_to_remind_of(hooks, session, clock) -> None:  # type: ignore[no-untyped-def]
    client, runtime, shop = hooks
    now = clock.now()
    make_product(session, shop, now, external_id="1")
    deliver(client, "checkouts/create", payloads.checkout_payload(3, 7, now - timedelta(minutes=5), shop=SHOP))
    deliver(client, "checkouts/update", payloads.checkout_payload(3, 7, now, shop=SHOP, completed=True))
    run_hooks(runtime)
    assert session.execute(select(func.count()).select_from(CartLine)).scalar_one() == 0


def test_data_hooks_for_an_uninstalled_shop_change_nothing(hooks, session, clock) -> None:  # type: ignore[no-untyped-def]
    client, runtime, shop = hooks
    shop.state = "uninstalled"
    session.add(shop)
    session.commit()
    deliver(client, "customers/create", payloads.customer_payload(7, clock.now()))
    run_hooks(runtime)
    assert session.execute(select(func.count()).select_from(Customer)).scalar_one() == 0
    assert session.execute(select(HookDelivery.outcome)).scalar_one().startswith("ignored")


def test_a_delivery_for_an_unknown_shop_is_acknowledged_and_not_stored(hooks, session, clock) -> None:  # type: ignore[no-untyped-def]
    client, _, _ = hooks
    delivery = payloads.sign_delivery("customers/create", payloads.customer_payload(7, clock.now()),
                                      shop="someone-else.myshopify.com", secret="shpss_test-app-secret")
    response = client.post("/shopify/webhooks", content=delivery.body, headers=delivery.headers)
    assert (response.status_code, response.json()["queued"]) == (200, False)
    assert _deliveries(session) == 0


def test_a_payload_that_is_not_the_documented_shape_is_kept_as_refused_not_retried(hooks, session, clock) -> None:  # type: ignore[no-untyped-def]
    client, runtime, _ = hooks
    deliver(client, "orders/create", {"id": "not-a-number", "created_at": "yesterday"})
    run_hooks(runtime)
    row = session.execute(select(HookDelivery)).scalar_one()
    assert row.applied_at is not None and row.outcome.startswith("refused")
    assert session.execute(select(func.count()).select_from(Order)).scalar_one() == 0


def test_a_delivery_whose_job_was_lost_is_handed_over_again_by_the_sweeper(hooks, session, clock) -> None:  # type: ignore[no-untyped-def]
    from plugin.jobs.work import sweep_outbox

    client, runtime, _ = hooks
    deliver(client, "customers/create", payloads.customer_payload(7, clock.now()))
    runtime.broker.flush_all()  # the queue is lost (a restart of an in-process broker)
    clock.advance(minutes=10)
    sweep_outbox(runtime)
    run_hooks(runtime)
    assert session.execute(select(func.count()).select_from(Customer)).scalar_one() == 1


def test_a_webhook_payload_maps_to_the_same_records_as_the_graphql_node(clock) -> None:  # type: ignore[no-untyped-def]
    from connectors.shopify import mapping, webhook_mapping
    from connectors.shopify.bulk import BulkObject

    now = clock.now()
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    # customers: REST snake_case vs GraphQL camelCase
    rest_customer = payloads.customer_payload(7, now, subscribed=True)
    node = {"id": "gid://shopify/Customer/7", "email": "customer7@example.jp", "firstName": "花子", "lastName": "山田",
            "updatedAt": stamp, "emailMarketingConsent": {"marketingState": "SUBSCRIBED"}}
    assert webhook_mapping.customer(rest_customer) == mapping.customer(node)
    # products: variants with price and inventory
    rest_product = payloads.product_payload(1, now, price="1200.00", stock=4)
    product_node = BulkObject({"id": "gid://shopify/Product/1", "title": "煎茶", "handle": "sencha-1", "status": "ACTIVE",
                               "productType": "お茶", "updatedAt": stamp,
                               "featuredImage": {"url": "https://cdn.shopify.com/s/files/sencha-1.jpg"}},
                              {"ProductVariant": [{"id": "gid://shopify/ProductVariant/10", "sku": "SEN-1", "price": "1200.00",
                                                   "inventoryQuantity": 4}]})
    assert webhook_mapping.product(rest_product, f"https://{SHOP}", "JPY") == mapping.product(product_node, f"https://{SHOP}")
    # orders: lines, customer, total
    rest_order = payloads.order_payload(50, 7, now, products=(1, 2))
    order_node = BulkObject({"id": "gid://shopify/Order/50", "createdAt": stamp, "updatedAt": stamp, "cancelledAt": None,
                             "customer": {"id": "gid://shopify/Customer/7"},
                             "currentTotalPriceSet": {"shopMoney": {"amount": "2400", "currencyCode": "JPY"}}},
                            {"LineItem": [{"id": f"gid://shopify/LineItem/{5000 + p}", "name": f"煎茶 {p}", "quantity": 1,
                                           "product": {"id": f"gid://shopify/Product/{p}"},
                                           "originalUnitPriceSet": {"shopMoney": {"amount": "1200.00", "currencyCode": "JPY"}}}
                                          for p in (1, 2)]})
    assert webhook_mapping.order(rest_order) == mapping.order(order_node)


def test_an_older_delivery_applied_while_a_newer_one_is_being_written_waits_and_keeps_the_newer(
        hooks, session, clock, engine) -> None:  # type: ignore[no-untyped-def]
    import json
    import threading
    import time

    from plugin.sync.hook_apply import _hold_shop, apply_delivery, apply_records

    client, runtime, shop = hooks
    now = clock.now()
    # Given a late retry of an older update is queued
    deliver(client, "products/update", payloads.product_payload(1, now - timedelta(minutes=3), price="900.00"))
    older = session.execute(select(func.max(HookDelivery.id))).scalar_one()
    # and another worker is in the middle of writing the newer one (not committed yet)
    newer = runtime.platforms.get("shopify").read_hook(
        "products/update", json.dumps(payloads.product_payload(1, now, price="1500.00")).encode(),
        shop_url=shop.domain, currency=shop.currency)
    writer = Session(engine)
    _hold_shop(writer, shop.id)
    apply_records(writer, writer.get(Shop, shop.id), newer, now, now)
    # When a second worker applies the older delivery at the same moment
    failures: list[BaseException] = []

    def second_worker() -> None:
        try:
            apply_delivery(runtime, older)
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    thread = threading.Thread(target=second_worker)
    thread.start()
    time.sleep(0.5)  # it reaches the shop's hold (or, unheld, reads the product before the newer one lands)
    writer.commit()
    writer.close()
    thread.join(30)
    # Then it waited for the newer write and skipped its older record
    assert not failures, failures
    session.expire_all()
    product = session.execute(select(Product).where(col(Product.external_id) == "1")).scalar_one()
    assert product.price == 1500
    assert "products 0/1" in (session.get(HookDelivery, older).outcome or "")


def test_a_guest_checkout_becomes_a_cart_of_a_guest_keyed_by_email_with_the_checkbox_as_consent(
        hooks, session, clock) -> None:  # type: ignore[no-untyped-def]
    client, runtime, shop = hooks
    now = clock.now()
    make_product(session, shop, now, external_id="1")
    deliver(client, "checkouts/create", payloads.checkout_payload(
        4, None, now, shop=SHOP, guest_email="Ichiro@Example.jp", accepts_marketing=True))
    run_hooks(runtime)
    cart = session.execute(select(Cart)).scalar_one()
    buyer = session.get(Customer, cart.customer_id)
    assert buyer is not None
    assert (buyer.external_id, buyer.is_guest, buyer.email_consent, buyer.name) == (
        "guest:ichiro@example.jp", True, True, "鈴木 一郎")
    assert cart.recovery_url.endswith("recover?key=k4")


def test_a_guest_checkout_without_the_checkbox_reaches_nobody(hooks, session, clock) -> None:  # type: ignore[no-untyped-def]
    client, runtime, shop = hooks
    now = clock.now()
    make_product(session, shop, now, external_id="1")
    deliver(client, "checkouts/create", payloads.checkout_payload(4, None, now, shop=SHOP, guest_email="ichiro@example.jp"))
    run_hooks(runtime)
    buyer = session.get(Customer, session.execute(select(Cart)).scalar_one().customer_id)
    assert buyer is not None and buyer.email_consent is False


def test_a_guest_checkout_with_a_members_email_is_the_members_cart_and_keeps_their_opt_out(
        hooks, session, clock) -> None:  # type: ignore[no-untyped-def]
    client, runtime, shop = hooks
    now = clock.now()
    make_product(session, shop, now, external_id="1")
    member = make_customer(session, shop, now, external_id="7", email="hanako@example.jp", email_consent=False)
    deliver(client, "checkouts/create", payloads.checkout_payload(
        4, None, now, shop=SHOP, guest_email="HANAKO@example.jp", accepts_marketing=True))
    run_hooks(runtime)
    cart = session.execute(select(Cart)).scalar_one()
    session.refresh(member)
    assert cart.customer_id == member.id and member.email_consent is False
    assert session.execute(select(func.count()).select_from(Customer)).scalar_one() == 1


def test_a_checkout_with_neither_account_nor_email_is_ignored(hooks, session, clock) -> None:  # type: ignore[no-untyped-def]
    client, runtime, shop = hooks
    deliver(client, "checkouts/create", payloads.checkout_payload(4, None, clock.now(), shop=SHOP))
    run_hooks(runtime)
    assert session.execute(select(func.count()).select_from(Cart)).scalar_one() == 0

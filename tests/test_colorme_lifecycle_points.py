"""What the thanks page and the points say, against the sandbox shop: a thanks-page purchase is
matched to the synced order and counted once; every expiry date says where it comes from."""
from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from plugin.delivery.batch import deliver_batch
from plugin.engine.tick import run_shop_tick
from plugin.install.lifecycle import sync_installed_shop
from plugin.measurement.links import attribute_orders, visitor_proof
from plugin.storage.models import Conversion, Customer, Message, MessageEvent, MessageStatus, Order, ThanksPageOrder, Trigger
from plugin.storage.point_expiry import expiry_source
from plugin.web.app import create_app
from tests import test_install
from tests.factories import enable, make_customer, make_shop
from tests.test_install import _installed, _shop

colorme = test_install.colorme  # the sandbox ColorMe fixture

VISITOR = "thanks-page-visitor-0001"


def _clicked_mail(session, shop, customer, clicked_at: datetime) -> Message:  # type: ignore[no-untyped-def]
    """A sent reminder the customer clicked at `clicked_at`."""
    trigger = Trigger("cart", None, None)
    message = Message(shop_id=shop.id, customer_id=customer.id, scenario_key="cart_recovery", trigger_key=trigger.key,
                      trigger_kind=trigger.kind, to_address=customer.email, status=MessageStatus.sent,
                      scheduled_at=clicked_at, created_at=clicked_at, sent_at=clicked_at)
    session.add(message)
    session.commit()
    session.add(MessageEvent(shop_id=shop.id, message_id=message.id or 0, kind="click", occurred_at=clicked_at))
    session.commit()
    return message


def _new_sale(data, customer_external_id: str, sale_id: int, made: datetime) -> dict[str, object]:  # type: ignore[no-untyped-def]
    """An order placed in the sandbox shop now, shaped like ColorMe's sale (it reaches Okaeri by sync)."""
    buyer = next(c for c in data.customers if str(c["id"]) == customer_external_id)
    sale = copy.deepcopy(data.sales[-1])
    sale.update({"id": sale_id, "make_date": int(made.timestamp()), "update_date": int(made.timestamp()) + 300,
                 "canceled": False, "customer": {k: v for k, v in buyer.items() if not k.startswith("_")}})
    for line in sale["details"]:
        line["sale_id"] = sale_id
    data.sales.append(sale)
    return sale


def _thanks_page(client: TestClient, shop, order_id: str, proof: str):  # type: ignore[no-untyped-def]
    """What storefront.js posts on the thanks page (Colorme.sale.id), as text/plain."""
    body = {"type": "purchase", "visitor": VISITOR, "proof": proof, "order_id": order_id}
    return client.post(f"/events/colorme/{shop.event_key}", content=json.dumps(body), headers={"content-type": "text/plain"})


def _conversions(session) -> list[Conversion]:  # type: ignore[no-untyped-def]
    session.expire_all()
    return list(session.execute(select(Conversion)).scalars())


def test_a_thanks_page_purchase_is_matched_to_the_synced_order_and_counted_once(  # type: ignore[no-untyped-def]
        runtime, session, colorme, clock) -> None:
    data, _, sandbox, _ = colorme
    client = TestClient(create_app(runtime))
    _installed(client, sandbox)
    shop = _shop(session)
    sync_installed_shop(runtime, shop.id, full=True)
    now = clock.now()
    customer = session.execute(select(Customer).where(Customer.shop_id == shop.id, Customer.email != "")).scalars().first()
    # Given a customer who clicked Okaeri's reminder an hour ago (the link's proof rides to the shop)
    mail = _clicked_mail(session, shop, customer, now - timedelta(hours=1))
    proof = visitor_proof(runtime, shop.id, customer.id, now - timedelta(minutes=30))
    # When they buy, and the thanks page reports the order id (twice: the page was reloaded)
    _new_sale(data, customer.external_id, 99000001, now - timedelta(minutes=5))
    assert _thanks_page(client, shop, "99000001", proof).status_code == 202
    assert _thanks_page(client, shop, "99000001", proof).status_code == 202
    # Then nothing is counted before sync brings the order
    report, = session.execute(select(ThanksPageOrder)).scalars()
    assert report.order_id is None and report.customer_id == customer.id and _conversions(session) == []
    # When the sync brings it
    sync_installed_shop(runtime, shop.id)
    # Then the report is linked to the synced order, which is the mail's one conversion
    order = session.execute(select(Order).where(Order.shop_id == shop.id, Order.external_id == "99000001")).scalar_one()
    conversion, = _conversions(session)
    assert (conversion.order_id, conversion.message_id, conversion.revenue) == (order.id, mail.id, order.total)
    session.expire_all()
    assert session.get(ThanksPageOrder, report.id).order_id == order.id
    # and the same order coming again (updated at ColorMe, synced again) and the sweeper's
    # last-click attribution add nothing
    data.sales[-1]["update_date"] = int(now.timestamp()) + 600
    sync_installed_shop(runtime, shop.id)
    attribute_orders(session, shop.id, now + timedelta(hours=1))
    assert len(_conversions(session)) == 1


def test_a_thanks_page_report_of_someone_elses_order_counts_for_nobody(runtime, session, colorme, clock) -> None:  # type: ignore[no-untyped-def]
    data, _, sandbox, _ = colorme
    client = TestClient(create_app(runtime))
    _installed(client, sandbox)
    shop = _shop(session)
    sync_installed_shop(runtime, shop.id, full=True)
    now = clock.now()
    clicker, other = session.execute(select(Customer).where(Customer.shop_id == shop.id, Customer.email != "")
                                     .order_by(Customer.id).limit(2)).scalars()
    _clicked_mail(session, shop, clicker, now - timedelta(hours=1))
    _new_sale(data, other.external_id, 99000002, now - timedelta(minutes=5))  # bought by another customer
    # When the clicker's browser claims that order on a thanks page
    assert _thanks_page(client, shop, "99000002", visitor_proof(runtime, shop.id, clicker.id, now)).status_code == 202
    sync_installed_shop(runtime, shop.id)
    # Then the report is matched to the order, and no conversion is made of it
    report, = session.execute(select(ThanksPageOrder)).scalars()
    assert report.order_id is not None and _conversions(session) == []


def test_a_purchase_event_without_an_order_id_is_refused_and_one_without_proof_kept_nowhere(  # type: ignore[no-untyped-def]
        runtime, session, colorme) -> None:
    _, _, sandbox, _ = colorme
    client = TestClient(create_app(runtime))
    _installed(client, sandbox)
    shop = _shop(session)
    answer = client.post(f"/events/colorme/{shop.event_key}", content=json.dumps({"type": "purchase", "visitor": VISITOR}))
    assert answer.status_code == 422 and "order_id" in answer.json()["error"]
    unproven = {"type": "purchase", "visitor": VISITOR, "customer_id": "1", "order_id": "99000003"}
    assert client.post(f"/events/colorme/{shop.event_key}", content=json.dumps(unproven)).status_code == 202
    assert session.execute(select(func.count()).select_from(ThanksPageOrder)).scalar_one() == 0


def test_the_storefront_script_reports_the_thanks_pages_order_id() -> None:
    from connectors.colorme.storefront import script_body

    assert 'type: "purchase", order_id: String(C.sale.id)' in script_body()


# 4. Points: the balance from ColorMe, the expiry from the shop's rule, and a label saying so --------


def test_the_expiry_label_says_the_rule_and_its_numbers_in_japanese_first(session, clock) -> None:  # type: ignore[no-untyped-def]
    shop = make_shop(session, clock.now(), points_source="ColorMe", points_expiry_months=6)
    assert expiry_source(shop, "2026-01-05", "ja") == "ColorMe: 最終購入日(2026-01-05) + 6か月(ショップのルール)"
    assert expiry_source(shop, "2026-01-05", "en") == "ColorMe: last order (2026-01-05) + 6 months (shop rule)"
    assert "購入履歴がないため期限なし" in expiry_source(shop, "", "ja")
    shop.points_expiry_from_platform, shop.points_source = True, "Shopify"
    assert expiry_source(shop, "2026-01-05", "ja") == "Shopify: 有効期限はShopifyのデータ(同期した日付)"


def test_a_sync_names_colorme_as_the_point_source_and_its_rule_as_the_expirys(runtime, session, colorme) -> None:  # type: ignore[no-untyped-def]
    _, _, sandbox, _ = colorme
    _installed(TestClient(create_app(runtime)), sandbox)
    shop = _shop(session)
    shop.points_source = ""  # as an install from before revision 0024
    session.add(shop)
    session.commit()
    sync_installed_shop(runtime, shop.id)
    shop = _shop(session)
    assert (shop.points_source, shop.points_expiry_from_platform) == ("ColorMe", False)


def test_point_mails_say_where_the_expiry_date_comes_from(runtime, session, clock, catcher) -> None:  # type: ignore[no-untyped-def]
    now = clock.now()
    shop = make_shop(session, now, points_source="ColorMe", points_expiry_months=12)
    enable(session, shop, "point_expiry", now)
    last_order = datetime(2025, 12, 10, 3, 0, tzinfo=UTC)
    make_customer(session, shop, now, points_balance=500, last_order_at=last_order,
                  points_expire_at=datetime(2026, 12, 10, 3, 0, tzinfo=UTC))
    run_shop_tick(runtime, shop.id)
    deliver_batch(runtime, list(session.execute(select(Message.id).where(Message.shop_id == shop.id)).scalars()))
    mail, = catcher.snapshot()
    text = mail.get_body(("plain",)).get_content()
    assert "2026-12-10 に失効します（ColorMe: 最終購入日(2025-12-10) + 12か月(ショップのルール)）" in text

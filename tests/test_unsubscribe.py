"""Unsubscribe links work without login, one click (RFC 8058), and cannot be forged."""
from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from plugin.delivery.batch import deliver
from plugin.engine.tick import run_shop_tick
from plugin.storage.models import Customer, MessageEvent, Suppression
from plugin.web.app import create_app
from tests.factories import idle_cart_shop


def _link(runtime, session, clock, catcher) -> tuple[str, object]:  # type: ignore[no-untyped-def]
    shop, people, _ = idle_cart_shop(session, clock.now(), customers=1)
    for message_id, _ in run_shop_tick(runtime, shop.id):
        deliver(runtime, message_id)
    url = catcher.snapshot()[0]["List-Unsubscribe"].strip().strip("<>")
    return url.removeprefix("http://okaeri.test"), people[0]


def test_one_click_post_unsubscribes_and_is_recorded(runtime, session, clock, catcher) -> None:  # type: ignore[no-untyped-def]
    path, person = _link(runtime, session, clock, catcher)
    answer = TestClient(create_app(runtime)).post(path, data={"List-Unsubscribe": "One-Click"})
    assert answer.status_code == 200 and "配信を停止しました" in answer.text
    assert session.execute(select(Suppression.address)).scalar_one() == person.email
    session.expire_all()
    assert session.get(Customer, person.id).email_consent is False
    assert session.execute(select(MessageEvent.kind)).scalar_one() == "unsubscribe"


def test_opening_the_link_only_asks(runtime, session, clock, catcher) -> None:  # type: ignore[no-untyped-def]
    path, _ = _link(runtime, session, clock, catcher)
    answer = TestClient(create_app(runtime)).get(path)
    assert answer.status_code == 200 and "配信を停止しますか" in answer.text
    assert session.execute(select(Suppression)).first() is None


def test_tampered_link_is_refused(runtime, session, clock, catcher) -> None:  # type: ignore[no-untyped-def]
    path, _ = _link(runtime, session, clock, catcher)
    answer = TestClient(create_app(runtime)).post(path[:-3] + "xyz")
    assert answer.status_code == 400 and "無効" in answer.text
    assert session.execute(select(Suppression)).first() is None


def test_a_link_naming_another_customer_is_refused(runtime, session, clock, catcher) -> None:  # type: ignore[no-untyped-def]
    path, person = _link(runtime, session, clock, catcher)
    shop_id, customer_id, message_id, tag = path.removeprefix("/u/").split(".")
    forged = f"/u/{shop_id}.{int(customer_id) + 1}.{message_id}.{tag}"
    answer = TestClient(create_app(runtime)).post(forged)
    assert answer.status_code == 400 and "無効" in answer.text
    assert session.execute(select(Suppression)).first() is None


def test_a_link_from_an_earlier_release_still_unsubscribes(runtime, session, clock) -> None:  # type: ignore[no-untyped-def]
    """Mail sent before the link format changed carries itsdangerous tokens: they must keep working."""
    shop, people, _ = idle_cart_shop(session, clock.now(), customers=1)
    token = runtime.signer.dumps({"s": shop.id, "c": people[0].id, "m": None}, "unsubscribe")
    answer = TestClient(create_app(runtime)).post(f"/u/{token}")
    assert answer.status_code == 200 and "配信を停止しました" in answer.text
    assert session.execute(select(Suppression.address)).scalar_one() == people[0].email

"""Install and uninstall hooks as ColorMe sends them: signed, answered, idempotent."""
from __future__ import annotations

import json

from fastapi.testclient import TestClient
from sqlalchemy import select

from connectors.signatures import hmac_sha256_b64
from plugin.engine.tick import run_shop_tick
from plugin.storage.models import InstallState, Message, MessageStatus, Shop
from plugin.web.app import create_app
from tests.factories import idle_cart_shop


def _post(client: TestClient, path: str, payload: dict[str, object], secret: str = "whsecret"):  # type: ignore[no-untyped-def]
    body = json.dumps(payload).encode()
    return client.post(path, content=body, headers={"X-Appstore-Signature": hmac_sha256_b64(secret, body),
                                                    "Content-Type": "application/json"})


def test_install_hook_answers_with_redirect_url_and_records_the_shop(runtime, session) -> None:  # type: ignore[no-untyped-def]
    client = TestClient(create_app(runtime))
    answer = _post(client, "/colorme/hooks/install", {"account_id": "PA12345678", "mail": "owner@example.jp"})
    assert answer.status_code == 200
    assert answer.json() == {"redirect_url": "http://okaeri.test/colorme/oauth/start?account_id=PA12345678"}
    shop = session.execute(select(Shop)).scalar_one()
    assert shop.state == InstallState.installing and shop.owner_email == "owner@example.jp"


def test_hook_with_a_bad_signature_is_refused_with_401_and_changes_nothing(runtime, session) -> None:  # type: ignore[no-untyped-def]
    client = TestClient(create_app(runtime))
    answer = _post(client, "/colorme/hooks/install", {"account_id": "PA12345678"}, secret="wrong")
    assert answer.status_code == 401
    assert session.execute(select(Shop)).first() is None


def test_hook_without_a_valid_account_id_is_a_400_with_a_reason(runtime) -> None:  # type: ignore[no-untyped-def]
    answer = _post(TestClient(create_app(runtime)), "/colorme/hooks/install", {"account_id": "nope"})
    assert answer.status_code == 400 and "account_id" in answer.json()["error"]


def test_uninstall_stops_pending_sends_and_drops_the_token_once(runtime, session, clock) -> None:  # type: ignore[no-untyped-def]
    shop, _, _ = idle_cart_shop(session, clock.now(), customers=2)
    run_shop_tick(runtime, shop.id)
    client = TestClient(create_app(runtime))
    hook = {"account_id": shop.external_id, "uninstalled_at": 1763600000, "reason": "by_shop_owner"}
    first, repeat = _post(client, "/colorme/hooks/uninstall", hook), _post(client, "/colorme/hooks/uninstall", hook)
    assert first.json()["changed"] is True and repeat.json()["changed"] is False
    session.expire_all()
    shop = session.get(Shop, shop.id)
    assert shop.state == InstallState.uninstalled and shop.access_token_encrypted == ""
    statuses = set(session.execute(select(Message.status)).scalars())
    assert statuses == {MessageStatus.cancelled}


def test_oauth_callback_with_a_foreign_state_is_refused(runtime) -> None:  # type: ignore[no-untyped-def]
    client = TestClient(create_app(runtime))
    client.get("/colorme/oauth/start?account_id=PA12345678", follow_redirects=False)
    answer = client.get("/colorme/oauth/callback?code=abc&state=forged")
    assert answer.status_code == 400 and "state" in answer.json()["detail"]


def test_settings_page_needs_the_merchant_session(runtime) -> None:  # type: ignore[no-untyped-def]
    answer = TestClient(create_app(runtime)).get("/app/settings")
    assert answer.status_code == 401


def test_a_full_sync_leaves_the_planner_statistics_of_what_it_loaded(session, clock) -> None:  # type: ignore[no-untyped-def]
    # The first tick usually follows the first sync within a minute, before autovacuum has
    # analysed anything; without statistics PostgreSQL planned a 10k-cart write for one-row tables.
    from sqlalchemy import text

    from plugin.storage.db import refresh_statistics
    from plugin.sync.run import SYNCED_TABLES
    from tests.factories import make_customer, make_shop

    shop = make_shop(session, clock.now())
    for _ in range(30):
        make_customer(session, shop, clock.now())
    assert refresh_statistics(session, SYNCED_TABLES) == (session.get_bind().dialect.name == "postgresql")
    if session.get_bind().dialect.name == "postgresql":
        rows = session.execute(text("SELECT reltuples FROM pg_class WHERE oid = 'customers'::regclass")).scalar()
        assert rows == 30

"""A ColorMe install's life after the hooks, against the sandbox shop (ColorMe's HTTP shapes): a 401
at any time revokes it exactly as the uninstall hook does, an OAuth left half-way is finished later,
the uninstall hook's retries are processed once, and the storefront script's tags follow its bytes."""
from __future__ import annotations

import hashlib
from base64 import b64encode
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from connectors.errors import Unauthorized
from plugin.delivery.batch import deliver_batch
from plugin.install.lifecycle import refresh_scripts, sync_installed_shop
from plugin.storage.models import (
    Customer,
    InstallState,
    Message,
    MessageStatus,
    ScriptTag,
    Trigger,
    WebhookReceipt,
)
from plugin.web.app import create_app
from tests import test_install
from tests.test_install import SANDBOX_ACCOUNT, _authorise, _installed, _post, _shop

colorme = test_install.colorme  # the sandbox ColorMe fixture

UNINSTALL = {"account_id": SANDBOX_ACCOUNT, "application_charge_source_id": "plan-1", "uninstalled_at": 1763600000,
             "reason": "by_shop_owner", "recurring_application_charge_id": 1}


def _pending_message(session, shop, customer, now, ref: int | None = None) -> Message:  # type: ignore[no-untyped-def]
    """A reminder the outbox holds for the customer, due now."""
    trigger = Trigger("cart", ref, None)
    message = Message(shop_id=shop.id, customer_id=customer.id, scenario_key="cart_recovery", trigger_key=trigger.key,
                      trigger_kind=trigger.kind, trigger_ref=trigger.ref, to_address=customer.email or "c@example.jp",
                      status=MessageStatus.pending, scheduled_at=now, created_at=now)
    session.add(message)
    session.commit()
    session.refresh(message)
    return message


def _synced_shop(runtime, session, client, sandbox):  # type: ignore[no-untyped-def]
    _installed(client, sandbox)
    shop = _shop(session)
    sync_installed_shop(runtime, shop.id, full=True)
    return _shop(session)


# 1. A 401 revokes ---------------------------------------------------------------------------


def test_a_401_in_the_middle_of_a_sync_revokes_the_install_as_the_uninstall_hook_does(  # type: ignore[no-untyped-def]
        runtime, session, colorme, clock, catcher) -> None:
    _, _, sandbox, _ = colorme
    client = TestClient(create_app(runtime))
    # Given an installed, synced shop with a reminder waiting in the outbox
    shop = _synced_shop(runtime, session, client, sandbox)
    customer = session.execute(select(Customer).where(Customer.shop_id == shop.id)).scalars().first()
    waiting = _pending_message(session, shop, customer, clock.now())

    # When the merchant withdraws Okaeri's permission in ColorMe while a sync is reading customers
    def revoke_after_first_page(resource: str, done: int, total: int | None) -> None:
        if resource == "customers":
            assert sandbox.post("/admin/revoke").status_code == 200

    with pytest.raises(Unauthorized):
        sync_installed_shop(runtime, shop.id, full=True, progress=revoke_after_first_page)

    # Then the install is revoked: no token kept, the waiting reminder cancelled and never sent
    shop = _shop(session)
    assert (shop.state, shop.state_reason, shop.access_token_encrypted) == (InstallState.revoked, "token_refused", "")
    session.expire_all()
    assert session.get(Message, waiting.id).status == MessageStatus.cancelled
    # and a message a racing tick wrote just before is held by delivery's check of the shop's state
    late = _pending_message(session, shop, customer, clock.now(), ref=2)
    deliver_batch(runtime, [waiting.id, late.id])
    assert catcher.snapshot() == []
    session.expire_all()
    assert session.get(Message, late.id).status == MessageStatus.cancelled
    # and the sandbox answers 401 with ColorMe's error body from then on
    refused = sandbox.get("/v1/shop.json", headers={"Authorization": "Bearer anything"})
    assert refused.status_code == 401 and refused.json()["errors"][0]["code"] == 401010


def test_the_settings_page_of_a_revoked_shop_says_why_and_how_to_resume_in_japanese_then_english(  # type: ignore[no-untyped-def]
        runtime, session, colorme) -> None:
    _, _, sandbox, _ = colorme
    client = TestClient(create_app(runtime))
    shop = _synced_shop(runtime, session, client, sandbox)
    sandbox.post("/admin/revoke")
    with pytest.raises(Unauthorized):
        sync_installed_shop(runtime, shop.id)
    page = client.get("/app/settings", headers={"accept": "text/html"})
    assert page.status_code == 200
    assert "Okaeri は停止しています" in page.text
    assert "ColorMe が Okaeri のアクセス権を受け付けなくなりました" in page.text
    assert "送信待ちだったメッセージは送りません" in page.text
    assert f'href="http://okaeri.test/colorme/open?account_id={SANDBOX_ACCOUNT}"' in page.text
    english = client.get("/app/settings?lang=en", headers={"accept": "text/html"})
    assert "Okaeri is stopped" in english.text and "no longer accepts Okaeri&#39;s access" in english.text
    # and the merchant resumes from the page's link: OAuth again, active again with a new token
    assert _authorise(client, sandbox).status_code == 303
    assert _shop(session).state == InstallState.active and _shop(session).state_reason == ""


def test_a_401_on_a_script_tag_call_revokes_too(runtime, session, colorme) -> None:  # type: ignore[no-untyped-def]
    _, _, sandbox, _ = colorme
    client = TestClient(create_app(runtime))
    shop = _synced_shop(runtime, session, client, sandbox)
    for tag in session.execute(select(ScriptTag)).scalars():
        tag.integrity = "sha384-old"
        session.add(tag)
    session.commit()
    sandbox.post("/admin/revoke")
    assert refresh_scripts(runtime, shop.id) is True
    assert _shop(session).state == InstallState.revoked and _shop(session).access_token_encrypted == ""


# 2. An OAuth left half-way is finished later ------------------------------------------------


def test_a_merchant_who_left_oauth_after_the_install_hook_finishes_it_later_from_the_open_app_link(  # type: ignore[no-untyped-def]
        runtime, session, colorme) -> None:
    _, _, sandbox, _ = colorme
    # Given the install hook came, and the merchant closed the browser before approving
    assert _post(TestClient(create_app(runtime)), "/colorme/hooks/install",
                 {"account_id": SANDBOX_ACCOUNT, "mail": "o@example.jp"}).status_code == 200
    assert _shop(session).state == InstallState.installing
    # When, days later in another browser, they open the app (the app store's open-app URL)
    later = TestClient(create_app(runtime))
    opened = later.get(f"/colorme/open?account_id={SANDBOX_ACCOUNT}", follow_redirects=False)
    assert opened.status_code == 303
    assert opened.headers["location"] == f"http://okaeri.test/colorme/oauth/start?account_id={SANDBOX_ACCOUNT}"
    start = later.get(urlsplit(opened.headers["location"]).path + f"?account_id={SANDBOX_ACCOUNT}", follow_redirects=False)
    query = parse_qs(urlsplit(start.headers["location"]).query)
    approved = sandbox.post("/oauth/authorize", data={"redirect_uri": query["redirect_uri"][0], "state": query["state"][0],
                                                      "scope": query["scope"][0], "decision": "allow",
                                                      "account": SANDBOX_ACCOUNT}, follow_redirects=False)
    callback = urlsplit(approved.headers["location"])
    finished = later.get(f"{callback.path}?{callback.query}", follow_redirects=False)
    # Then the install completes and the merchant lands on the dashboard, signed in
    assert finished.status_code == 303 and finished.headers["location"] == "/app/"
    assert _shop(session).state == InstallState.active
    assert later.get("/app/settings").status_code == 200
    # and the state was single-use: the same callback cannot complete anything again
    later.cookies.set("okaeri_oauth", start.cookies.get("okaeri_oauth") or "")
    replay = later.get(f"{callback.path}?{callback.query}", follow_redirects=False)
    assert replay.status_code == 400
    # and the signed-in merchant opening the app again goes straight to the dashboard
    again = later.get(f"/colorme/open?account_id={SANDBOX_ACCOUNT}", follow_redirects=False)
    assert again.headers["location"] == "/app/"


def test_the_app_opened_without_an_account_id_learns_the_shop_from_the_token(runtime, session, colorme) -> None:  # type: ignore[no-untyped-def]
    _, _, sandbox, _ = colorme
    assert _post(TestClient(create_app(runtime)), "/colorme/hooks/install", {"account_id": SANDBOX_ACCOUNT}).status_code == 200
    # When the merchant opens the app from ColorMe's admin, by a URL that names no shop
    later = TestClient(create_app(runtime))
    start = later.get("/colorme/open", follow_redirects=False)
    assert start.status_code == 303 and start.headers["location"].startswith("https://api.shop-pro.jp/oauth/authorize")
    query = parse_qs(urlsplit(start.headers["location"]).query)
    approved = sandbox.post("/oauth/authorize", data={"redirect_uri": query["redirect_uri"][0], "state": query["state"][0],
                                                      "scope": query["scope"][0], "decision": "allow",
                                                      "account": SANDBOX_ACCOUNT}, follow_redirects=False)
    callback = urlsplit(approved.headers["location"])
    # Then the token's own account completes its waiting install
    assert later.get(f"{callback.path}?{callback.query}", follow_redirects=False).headers["location"] == "/app/"
    assert _shop(session).state == InstallState.active
    assert later.get("/colorme/open", follow_redirects=False).headers["location"] == "/app/"


def test_an_uninstalled_shop_opened_again_is_told_to_install_from_the_app_store(runtime, session, colorme) -> None:  # type: ignore[no-untyped-def]
    _, _, sandbox, _ = colorme
    client = TestClient(create_app(runtime))
    _installed(client, sandbox)
    assert _post(client, "/colorme/hooks/uninstall", UNINSTALL).status_code == 200
    page = client.get(f"/colorme/open?account_id={SANDBOX_ACCOUNT}", headers={"accept": "text/html"}, follow_redirects=False)
    assert page.status_code == 409 and "アプリストアから Okaeri をインストールしてください" in page.text
    assert 'href="https://app.shop-pro.jp/"' in page.text


def test_the_manifest_names_the_open_app_url() -> None:
    import json
    from pathlib import Path

    manifest = json.loads((Path(__file__).parents[1] / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["platforms"]["colorme"]["open_app"] == "/colorme/open?account_id={account_id}"


# 3. The uninstall hook, retried by ColorMe, is processed once --------------------------------


def test_the_uninstall_hook_delivered_three_times_is_processed_once(runtime, session, colorme, clock) -> None:  # type: ignore[no-untyped-def]
    _, _, sandbox, _ = colorme
    client = TestClient(create_app(runtime))
    shop = _synced_shop(runtime, session, client, sandbox)
    customer = session.execute(select(Customer).where(Customer.shop_id == shop.id)).scalars().first()
    waiting = _pending_message(session, shop, customer, clock.now())
    # When ColorMe delivers the same uninstall hook three times (its retries, 2 h 30 min apart)
    answers = []
    for hours in (0, 2.5, 5):
        clock.at += timedelta(hours=hours)
        answers.append(_post(client, "/colorme/hooks/uninstall", UNINSTALL))
    # Then every delivery is answered 200, and only the first changed anything
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert [a.json()["changed"] for a in answers] == [True, False, False]
    receipts = session.execute(select(func.count()).select_from(WebhookReceipt).where(
        WebhookReceipt.topic == "uninstall")).scalar_one()
    assert receipts == 1
    shop = _shop(session)
    assert shop.state == InstallState.uninstalled and shop.state_reason == "uninstalled"
    assert shop.uninstalled_at is not None and shop.access_token_encrypted == ""
    session.expire_all()
    assert session.get(Message, waiting.id).status == MessageStatus.cancelled
    assert session.execute(select(ScriptTag)).first() is None  # ColorMe deleted them; nothing left to update


# 5. The script tags follow the script's bytes -------------------------------------------------


def _sri(body: bytes) -> str:
    return "sha384-" + b64encode(hashlib.sha384(body).digest()).decode()


def test_each_tags_integrity_matches_the_served_bytes_and_follows_them_when_they_change(  # type: ignore[no-untyped-def]
        runtime, session, colorme, monkeypatch) -> None:
    import connectors.colorme.storefront as storefront

    data, _, sandbox, router = colorme
    client = TestClient(create_app(runtime))
    shop = _synced_shop(runtime, session, client, sandbox)
    # Given the installed shop's tags: one per display scope, https-served by Okaeri with CORS
    served = client.get("/storefront/colorme.js")
    assert served.headers["access-control-allow-origin"] == "*"
    assert sorted(t["display_scope"] for t in data.script_tags) == ["shop", "thanks_page"]
    assert {t["integrity"] for t in data.script_tags} == {_sri(served.content)}
    assert all(t["src"] == f"http://okaeri.test/storefront/colorme.js?key={shop.event_key}" for t in data.script_tags)
    ids = sorted(t["id"] for t in data.script_tags)
    # When a new release changes the script
    monkeypatch.setattr(storefront, "script_body", lambda: "/* okaeri storefront, next release */\n")
    changed = client.get("/storefront/colorme.js")
    puts_before = sum(1 for c in router.calls if c.request.method == "PUT")
    sync_installed_shop(runtime, shop.id)
    # Then the next sync updates the same tags in place (PUT) with the new bytes' integrity
    assert sorted(t["id"] for t in data.script_tags) == ids
    assert {t["integrity"] for t in data.script_tags} == {_sri(changed.content)} != {_sri(served.content)}
    assert sum(1 for c in router.calls if c.request.method == "PUT") - puts_before == 2
    # and a sync with nothing changed calls nothing
    calls = len(router.calls)
    assert refresh_scripts(runtime, shop.id) is False and len(router.calls) == calls


def test_an_install_from_before_the_integrity_was_kept_gets_its_tag_updated_and_the_thanks_page_tag(  # type: ignore[no-untyped-def]
        runtime, session, colorme) -> None:
    data, _, sandbox, _ = colorme
    client = TestClient(create_app(runtime))
    shop = _synced_shop(runtime, session, client, sandbox)
    # Given an install migrated from before revision 0024: one shop tag, its integrity unknown
    thanks = next(t for t in data.script_tags if t["display_scope"] == "thanks_page")
    data.script_tags.remove(thanks)
    main = data.script_tags[0]
    main["integrity"] = "sha384-" + "A" * 64
    for row in session.execute(select(ScriptTag)).scalars():
        if row.scope == "thanks_page":
            session.delete(row)
        else:
            row.integrity = ""
            session.add(row)
    session.commit()
    # When it next syncs
    sync_installed_shop(runtime, shop.id)
    # Then its tag carries the served script's integrity, and the thanks page has its own tag
    served = client.get("/storefront/colorme.js").content
    assert main["integrity"] == _sri(served)
    assert [t["display_scope"] for t in data.script_tags] == ["shop", "thanks_page"]


def test_the_sandbox_refuses_a_tag_whose_integrity_is_not_sri(colorme) -> None:  # type: ignore[no-untyped-def]
    data, config, sandbox, _ = colorme
    token = "t" * 64
    config.tokens.add(token)
    answer = sandbox.post("/appstore/v1/script_tags.json", headers={"Authorization": f"Bearer {token}"},
                          json={"script_tag": {"src": "https://okaeri.test/s.js", "display_scope": "shop", "integrity": "md5-x"}})
    assert answer.status_code == 422 and answer.json()["errors"][0]["code"] == 422100
    wrong_scope = sandbox.post("/appstore/v1/script_tags.json", headers={"Authorization": f"Bearer {token}"},
                               json={"script_tag": {"src": "https://okaeri.test/s.js", "display_scope": "cart"}})
    assert wrong_scope.status_code == 422


def test_switching_the_storefront_script_off_removes_the_tags_and_on_places_them_again(  # type: ignore[no-untyped-def]
        runtime, session, colorme) -> None:
    import re

    data, _, sandbox, router = colorme
    client = TestClient(create_app(runtime))
    shop = _synced_shop(runtime, session, client, sandbox)
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/app/settings").text).group(1)  # type: ignore[union-attr]
    # When the merchant switches the storefront script off on the settings page
    assert client.post("/app/settings/storefront-script", data={"enabled": "0", "csrf": csrf},
                       follow_redirects=False).status_code == 303
    # Then ColorMe is asked to delete both tags, and a sync does not put them back
    assert data.script_tags == []
    assert sum(1 for c in router.calls if c.request.method == "DELETE") == 2
    sync_installed_shop(runtime, shop.id)
    assert data.script_tags == [] and _shop(session).storefront_enabled is False
    assert "スクリプトを入れて計測する" in client.get("/app/settings").text
    # and the storefront's events are not taken
    beacon = client.post(f"/events/colorme/{shop.event_key}", content=b'{"type":"product_view","visitor":"'
                         + b"v" * 24 + b'","customer_id":"1","product_id":"1"}')
    assert beacon.status_code == 404
    # When it is switched on again, both tags are placed with the served script's integrity
    client.post("/app/settings/storefront-script", data={"enabled": "1", "csrf": csrf})
    served = client.get("/storefront/colorme.js").content
    assert sorted(t["display_scope"] for t in data.script_tags) == ["shop", "thanks_page"]
    assert {t["integrity"] for t in data.script_tags} == {_sri(served)}


def test_a_failed_tag_update_leaves_a_note_that_the_next_success_clears(runtime, session, colorme, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import connectors.colorme.storefront as storefront
    from connectors.errors import ProviderDown

    _, _, sandbox, _ = colorme
    client = TestClient(create_app(runtime))
    shop = _synced_shop(runtime, session, client, sandbox)
    monkeypatch.setattr(storefront, "script_body", lambda: "/* next release */\n")
    real_put = storefront.update_script

    def down(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise ProviderDown("ColorMe answered 503", platform="colorme", status=503)

    monkeypatch.setattr(storefront, "update_script", down)
    refresh_scripts(runtime, shop.id)
    assert _shop(session).state_message.startswith("storefront script not registered: ColorMe answered 503")
    assert _shop(session).state == InstallState.active
    monkeypatch.setattr(storefront, "update_script", real_put)
    assert refresh_scripts(runtime, shop.id) is True
    assert _shop(session).state_message == ""


def test_a_restarted_demo_gives_the_sandbox_back_both_tags(runtime, session, colorme) -> None:  # type: ignore[no-untyped-def]
    from plugin.demo.stack import _restore_script_tag

    data, _, sandbox, _ = colorme
    _synced_shop(runtime, session, TestClient(create_app(runtime)), sandbox)
    placed = sorted((t["id"], t["display_scope"], t["integrity"]) for t in data.script_tags)
    data.script_tags.clear()  # the sandbox's state is not kept across restarts
    _restore_script_tag(runtime, data, "http://okaeri.test")
    assert sorted((t["id"], t["display_scope"], t["integrity"]) for t in data.script_tags) == placed

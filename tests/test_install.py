"""Install and uninstall hooks as ColorMe sends them: signed, answered, idempotent."""
from __future__ import annotations

import html
import json
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import respx
from fastapi.testclient import TestClient
from sqlalchemy import select, text

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


# OAuth against the sandbox ColorMe, reached through respx: the same HTTP shapes as ColorMe's.

API = "https://api.shop-pro.jp"
SANDBOX_ACCOUNT = "PA00000001"


@pytest.fixture
def colorme(clock):  # type: ignore[no-untyped-def]
    """The sandbox ColorMe shop answering for api.shop-pro.jp, with the test settings' credentials."""
    from plugin.demo.sandbox.app import SandboxConfig, create_sandbox_app
    from plugin.demo.sandbox.seed import generate

    data = generate(42, clock.now(), "https://sandbox.test/store", customers=5, products=5)
    config = SandboxConfig(app_base_url="http://okaeri.test", client_id="cid", client_secret="csecret",
                           webhook_secret="whsecret")
    sandbox = TestClient(create_sandbox_app(data, config))

    def forward(request: httpx.Request) -> httpx.Response:
        answer = sandbox.request(request.method, request.url.raw_path.decode(), content=request.content,
                                 headers=dict(request.headers))
        return httpx.Response(answer.status_code, headers=answer.headers, content=answer.content)

    with respx.mock(assert_all_called=False) as router:
        router.route(host="api.shop-pro.jp").mock(side_effect=forward)
        yield data, config, sandbox, router


def _authorise(client: TestClient, sandbox: TestClient, logged_in_as: str = SANDBOX_ACCOUNT):  # type: ignore[no-untyped-def]
    """The merchant starts OAuth for the sandbox shop and approves it while logged in to `logged_in_as`."""
    start = client.get(f"/colorme/oauth/start?account_id={SANDBOX_ACCOUNT}", follow_redirects=False)
    query = parse_qs(urlsplit(start.headers["location"]).query)
    consent = sandbox.get("/oauth/authorize", params={k: v[0] for k, v in query.items()})
    assert "許可しますか" in consent.text and logged_in_as in consent.text
    approved = sandbox.post("/oauth/authorize", data={"redirect_uri": query["redirect_uri"][0], "state": query["state"][0],
                                                      "scope": query["scope"][0], "decision": "allow",
                                                      "account": logged_in_as}, follow_redirects=False)
    callback = urlsplit(approved.headers["location"])
    return client.get(f"{callback.path}?{callback.query}", follow_redirects=False)


def _installed(client: TestClient, sandbox: TestClient) -> None:
    assert _post(client, "/colorme/hooks/install", {"account_id": SANDBOX_ACCOUNT, "mail": "o@example.jp"}).status_code == 200
    assert _authorise(client, sandbox).status_code == 303


def _shop(session) -> Shop:  # type: ignore[no-untyped-def]
    session.expire_all()
    return session.execute(select(Shop)).scalar_one()


def test_a_code_for_another_account_is_a_400_in_japanese_and_its_token_is_never_kept(  # type: ignore[no-untyped-def]
        runtime, session, colorme, monkeypatch) -> None:
    data, config, sandbox, _ = colorme
    offered: list[str] = []
    platform = runtime.platforms.get("colorme")
    monkeypatch.setattr(platform, "revoke_token", lambda token: offered.append(token) or False)
    client = TestClient(create_app(runtime))
    # Given an install of the sandbox shop waiting for OAuth
    assert _post(client, "/colorme/hooks/install", {"account_id": SANDBOX_ACCOUNT}).status_code == 200
    # When the merchant approves while logged in to another ColorMe shop
    answer = _authorise(client, sandbox, logged_in_as="PA99999999")
    # Then the callback is a 400 page in Japanese that says which accounts, and what to do
    assert answer.status_code == 400 and answer.headers["content-type"].startswith("text/html")
    assert "インストールを完了できませんでした" in answer.text and "PA99999999" in answer.text
    assert f"{SANDBOX_ACCOUNT} のショップにログインし直して" in answer.text
    # and the token ColorMe issued for the other shop is offered for revocation, and stored nowhere
    issued, = config.other_tokens
    assert offered == [issued]
    shop = _shop(session)
    assert shop.state == InstallState.installing and shop.access_token_encrypted == "" and shop.script_tag_id == ""
    assert data.script_tags == []  # nothing was placed on either shop's pages
    rows = session.execute(text("SELECT * FROM shops")).all()
    assert not any(issued in str(value) or (isinstance(value, str) and value and _decrypts_to(runtime, value, issued))
                   for row in rows for value in row)


def _decrypts_to(runtime, value: str, token: str) -> bool:  # type: ignore[no-untyped-def]
    try:
        return bool(runtime.cipher.decrypt(value) == token)
    except Exception:  # noqa: BLE001 - most columns are not ciphertext
        return False


def test_the_wrong_account_page_follows_the_merchants_language(runtime, colorme) -> None:  # type: ignore[no-untyped-def]
    _, _, sandbox, _ = colorme
    client = TestClient(create_app(runtime))
    client.cookies.set("lang", "en")
    assert _post(client, "/colorme/hooks/install", {"account_id": SANDBOX_ACCOUNT}).status_code == 200
    answer = _authorise(client, sandbox, logged_in_as="PA99999999")
    assert answer.status_code == 400 and "could not be completed" in answer.text
    assert f"Log in to {SANDBOX_ACCOUNT}'s shop and install again" in html.unescape(answer.text)


def _on(data, scope: str = "shop") -> list[dict[str, object]]:  # type: ignore[no-untyped-def]
    """The sandbox shop's script tags for one display scope (ColorMe: one tag per scope)."""
    return [t for t in data.script_tags if t["display_scope"] == scope]


def test_authorising_again_updates_the_shops_one_script_tag(runtime, session, colorme) -> None:  # type: ignore[no-untyped-def]
    data, _, sandbox, router = colorme
    client = TestClient(create_app(runtime))
    # Given an installed shop whose tags ColorMe holds with an outdated integrity
    _installed(client, sandbox)
    tag, = _on(data)
    thanks, = _on(data, "thanks_page")
    assert _shop(session).script_tag_id == str(tag["id"])
    tag["integrity"] = thanks["integrity"] = "sha384-outdated"
    # When the merchant goes through OAuth again (e.g. to grant a new scope)
    assert _authorise(client, sandbox).status_code == 303
    # Then the same tags are updated in place: no other tag is registered
    assert [t["id"] for t in data.script_tags] == [tag["id"], thanks["id"]]
    assert all(t["integrity"] != "sha384-outdated" for t in data.script_tags)
    assert _shop(session).script_tag_id == str(tag["id"])
    creates = [c for c in router.calls if c.request.method == "POST" and c.request.url.path.endswith("script_tags.json")]
    assert len(creates) == 2  # once per display scope, at the first authorisation


def test_an_install_without_a_stored_tag_id_reuses_its_tag_and_drops_the_copies(runtime, session, colorme) -> None:  # type: ignore[no-untyped-def]
    from plugin.storage.models import ScriptTag

    data, _, sandbox, _ = colorme
    client = TestClient(create_app(runtime))
    # Given a shop installed before the tag's id was stored, re-authorised twice since (three copies),
    # and a tag that is not Okaeri's script
    _installed(client, sandbox)
    ours, = _on(data)
    data.script_tags += [{**ours, "id": ours["id"] + 10}, {**ours, "id": ours["id"] + 11},
                         {**ours, "id": ours["id"] + 12, "src": "https://other.example/widget.js"}]
    shop = _shop(session)
    shop.script_tag_id = ""
    session.execute(ScriptTag.__table__.delete())  # type: ignore[attr-defined]
    session.add(shop)
    session.commit()
    # When the merchant authorises again
    assert _authorise(client, sandbox).status_code == 303
    # Then one of Okaeri's tags per scope is left, updated and remembered; the other script is untouched
    srcs = sorted(t["src"] for t in _on(data))
    assert srcs == sorted([ours["src"], "https://other.example/widget.js"])
    assert len(_on(data, "thanks_page")) == 1
    assert _shop(session).script_tag_id == str(ours["id"])


def test_a_stored_tag_removed_at_colorme_is_registered_again(runtime, session, colorme) -> None:  # type: ignore[no-untyped-def]
    data, _, sandbox, _ = colorme
    client = TestClient(create_app(runtime))
    _installed(client, sandbox)
    data.script_tags.clear()  # the merchant deleted it in ColorMe's admin
    assert _authorise(client, sandbox).status_code == 303
    tag, = _on(data)
    assert _shop(session).script_tag_id == str(tag["id"]) and len(_on(data, "thanks_page")) == 1


def test_uninstall_forgets_the_tag_colorme_deleted(runtime, session, colorme) -> None:  # type: ignore[no-untyped-def]
    _, _, sandbox, _ = colorme
    client = TestClient(create_app(runtime))
    _installed(client, sandbox)
    hook = {"account_id": SANDBOX_ACCOUNT, "uninstalled_at": 1763600000, "reason": "by_shop_owner"}
    assert _post(client, "/colorme/hooks/uninstall", hook).json()["changed"] is True
    assert _shop(session).script_tag_id == ""

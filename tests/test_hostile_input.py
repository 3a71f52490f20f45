"""Hostile input (issue 12, "Server errors" and "Loose checks"): each finding, reproduced as a stranger
would send it, is refused with a clear 4xx and changes nothing; whatever is refused reaches a browser
as a page in its visitor's language and an API client as JSON; an unexpected failure is a calm 500
that keeps the connection open.

Findings tested where their fix lives: templates (`{{ 1/0 }}`, `range(10**7)`, `{{ 10**5000 }}`) and
the preview's `?customer=10**20` in tests/test_merchant_templates.py; OAuth `state` reuse in
tests/test_platform_plugin.py::test_an_oauth_state_carries_one_code_only; a code for another
account and one script tag per shop in tests/test_install.py.
"""
from __future__ import annotations

import http.client
import json
import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from connectors.signatures import hmac_sha256_b64, same_secret
from plugin.demo.mailcatcher import free_port
from plugin.storage.models import ConsentRecord, MessageEvent, Shop
from plugin.web.app import create_app
from plugin.web.deps import SESSION_COOKIE, session_cookie
from tests.factories import idle_cart_shop
from tests.live import serve

BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
HOSTILE = ["ÿþ", "署名", "\u00e9" * 22, "é"]
NESTED = b"[" * 5000 + b"]" * 5000
ENGLISH_WORDS = re.compile(r"\b(the|is|not|must|error|invalid|expired|unknown)\b", re.IGNORECASE)


def _client(runtime) -> TestClient:  # type: ignore[no-untyped-def]
    return TestClient(create_app(runtime), raise_server_exceptions=False)


def _signed(client: TestClient, path: str, body: bytes):  # type: ignore[no-untyped-def]
    return client.post(path, content=body, headers={"X-Appstore-Signature": hmac_sha256_b64("whsecret", body)})


def _shops(session) -> int:  # type: ignore[no-untyped-def]
    return session.execute(select(func.count()).select_from(Shop)).scalar()


@pytest.fixture
def merchant(runtime, session, clock):  # type: ignore[no-untyped-def]
    shop, people, _ = idle_cart_shop(session, clock.now(), customers=2)
    client = _client(runtime)
    client.cookies.set(SESSION_COOKIE, session_cookie(runtime, shop.id or 0))
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/app/settings").text).group(1)  # type: ignore[union-attr]
    return client, shop, people, csrf


# Server errors: non-ASCII bytes in compared secrets


@pytest.mark.parametrize("given", [*HOSTILE, "\ud800", ""])
def test_a_secret_with_any_characters_compares_unequal_without_raising(given: str) -> None:
    assert same_secret("abc", given) is False
    assert same_secret("\u00e9", "\u00e9") is True


@pytest.mark.parametrize("header", [b"\xff\xfe", "署名".encode(), b"\xc3\xa9" * 30])
def test_an_install_hook_with_a_non_ascii_signature_is_a_401(runtime, session, header) -> None:  # type: ignore[no-untyped-def]
    answer = _client(runtime).post("/colorme/hooks/install", content=json.dumps({"account_id": "PA12345678"}).encode(),
                                   headers={"X-Appstore-Signature": header})  # type: ignore[dict-item]
    assert answer.status_code == 401 and _shops(session) == 0


@pytest.mark.parametrize("tag", HOSTILE)
def test_open_and_click_links_with_a_non_ascii_tag_record_nothing(runtime, session, tag) -> None:  # type: ignore[no-untyped-def]
    client = _client(runtime)
    pixel = client.get(f"/t/o/1/{tag}.gif")
    click = client.get(f"/t/c/1/{tag}", params={"u": "https://evil.example/"}, follow_redirects=False)
    assert pixel.status_code == 200 and pixel.headers["content-type"] == "image/gif"
    assert click.status_code == 400 and "このリンクは無効です" in click.text
    assert session.execute(select(func.count()).select_from(MessageEvent)).scalar() == 0


@pytest.mark.parametrize("state", HOSTILE)
def test_an_oauth_callback_with_a_non_ascii_state_is_a_400(runtime, state) -> None:  # type: ignore[no-untyped-def]
    client = _client(runtime)
    client.get("/colorme/oauth/start?account_id=PA12345678", follow_redirects=False)
    assert client.get("/colorme/oauth/callback", params={"code": "c", "state": state}, follow_redirects=False).status_code == 400


@pytest.mark.parametrize("csrf", HOSTILE)
def test_a_settings_form_with_a_non_ascii_csrf_token_is_a_403_and_changes_nothing(merchant, session, csrf) -> None:  # type: ignore[no-untyped-def]
    client, shop, _, _ = merchant
    answer = client.post("/app/settings/rules", data={"csrf": csrf, "quiet_start_hour": "0", "quiet_end_hour": "0",
                                                      "cap_window_hours": "1", "cap_count": "10"})
    assert answer.status_code == 403
    session.expire_all()
    assert session.get(Shop, shop.id).cap_count == 1


# Server errors: deep JSON, impossible times, lone surrogates


@pytest.mark.parametrize("path, body", [
    ("/colorme/hooks/install", NESTED),
    ("/colorme/hooks/install", b'{"account_id": "PA12345678", "mail": "\\ud800"}'),
    ("/colorme/hooks/install", b'{"account_id": "PA12345678", "x": ' + b"[" * 100 + b"]" * 100 + b"}"),
    ("/colorme/hooks/uninstall", b'{"account_id": "PA12345678", "uninstalled_at": 1e400}'),
    ("/colorme/hooks/uninstall", b'{"account_id": "PA12345678", "uninstalled_at": 100000000000000000000}'),
    ("/colorme/hooks/uninstall", b'{"account_id": "PA12345678", "uninstalled_at": -5}'),
])
def test_a_signed_hook_with_a_hostile_body_is_a_400_with_a_reason(runtime, session, path, body) -> None:  # type: ignore[no-untyped-def]
    answer = _signed(_client(runtime), path, body)
    assert answer.status_code == 400 and answer.json()["error"]
    assert _shops(session) == 0


VISITOR = b'"visitor": "browser-of-a-stranger-0001", '


@pytest.mark.parametrize("body", [NESTED, b'{"type": "basket", ' + VISITOR + b'"customer_id": "\\udfff", "items": []}',
                                  b'{"type": "product_view", ' + VISITOR + b'"product_id": "1", "occurred_at": 1e400}',
                                  b'{"type": "product_view", ' + VISITOR + b'"product_id": "1", '
                                  b'"occurred_at": 100000000000000000000}'])
def test_a_storefront_beacon_with_a_hostile_body_is_a_422(runtime, session, clock, body) -> None:  # type: ignore[no-untyped-def]
    shop, _, _ = idle_cart_shop(session, clock.now(), customers=1)
    assert _client(runtime).post(f"/events/colorme/{shop.event_key}", content=body).status_code == 422
    valid = b'{"type": "product_view", ' + VISITOR + b'"product_id": "1"}'  # the same without the hostile part
    assert _client(runtime).post(f"/events/colorme/{shop.event_key}", content=valid).status_code == 202


# Loose checks


@pytest.mark.parametrize("account", ["PA12345678\n", "PA１２３４５６７８", " PA12345678", "PA123456789"])
def test_an_account_id_must_be_exactly_pa_and_eight_ascii_digits(runtime, session, account) -> None:  # type: ignore[no-untyped-def]
    client = _client(runtime)
    assert _signed(client, "/colorme/hooks/install", json.dumps({"account_id": account}).encode()).status_code == 400
    assert client.get("/colorme/oauth/start", params={"account_id": account}, follow_redirects=False).status_code == 400
    assert _shops(session) == 0


def test_a_validly_signed_but_huge_hook_body_is_a_413_and_stores_nothing(runtime, session) -> None:  # type: ignore[no-untyped-def]
    body = json.dumps({"account_id": "PA12345678", "mail": "x" * (1024 * 1024)}).encode()
    answer = _signed(_client(runtime), "/colorme/hooks/install", body)
    assert answer.status_code == 413 and answer.json()["code"] == "too_large"
    assert _shops(session) == 0


def test_the_api_map_is_not_published_unless_a_test_asks_for_it(runtime) -> None:  # type: ignore[no-untyped-def]
    client = _client(runtime)
    assert client.get("/openapi.json").status_code == 404 and client.get("/docs").status_code == 404
    assert TestClient(create_app(runtime, expose_schema=True)).get("/openapi.json").status_code == 200


def test_a_second_one_click_unsubscribe_records_consent_once(runtime, session, clock) -> None:  # type: ignore[no-untyped-def]
    from plugin.measurement.links import unsubscribe_token

    shop, people, _ = idle_cart_shop(session, clock.now(), customers=1)
    client = _client(runtime)
    link = f"/u/{unsubscribe_token(runtime, shop.id or 0, people[0].id or 0, None)}"
    assert client.post(link).status_code == 200 and client.post(link).status_code == 200
    withdrawn = session.execute(select(func.count()).select_from(ConsentRecord).where(
        ConsentRecord.consented.is_(False))).scalar()  # type: ignore[attr-defined]
    assert withdrawn == 1


# One error handler: a page in the visitor's language for a browser, JSON for a program


def test_a_missing_page_is_a_japanese_page_for_a_browser_and_json_for_a_program(runtime) -> None:  # type: ignore[no-untyped-def]
    client = _client(runtime)
    page = client.get("/nowhere", headers=BROWSER)
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert "ページが見つかりません" in page.text and "Not Found" not in page.text
    english = client.get("/nowhere?lang=en", headers=BROWSER)
    assert "Page not found" in english.text and "ページ" not in english.text
    program = client.get("/nowhere")
    assert program.status_code == 404 and program.json()["code"] == "http_404"


def test_a_wrong_method_is_a_405_page_that_says_which_methods_work(runtime) -> None:  # type: ignore[no-untyped-def]
    answer = _client(runtime).put("/healthz", headers=BROWSER)
    assert answer.status_code == 405 and answer.headers["allow"] == "GET" and "この操作には対応していません" in answer.text


@pytest.mark.parametrize("path, method, status", [
    ("/app/settings", "get", 401),  # no merchant session
    ("/colorme/oauth/callback?code=c&state=s", "get", 400),  # no OAuth session
    ("/colorme/oauth/start?account_id=PA1", "get", 400),  # a malformed account
    ("/nosuch/oauth/start?account_id=PA12345678", "get", 404),  # an unknown platform
    ("/t/c/x/abc?u=https://shop.example/", "get", 422),  # a request the schema refuses
])
def test_a_refusal_a_japanese_browser_sees_has_no_english_in_it(runtime, path, method, status) -> None:  # type: ignore[no-untyped-def]
    answer = getattr(_client(runtime), method)(path, headers=BROWSER, follow_redirects=False)
    assert answer.status_code == status and answer.headers["content-type"].startswith("text/html")
    message = re.search(r'<p id="message">(.*?)</p>', answer.text, re.S).group(1)  # type: ignore[union-attr]
    assert message and not ENGLISH_WORDS.search(message), message


def test_a_console_refusal_is_said_in_the_merchants_language(merchant) -> None:  # type: ignore[no-untyped-def]
    client, _, _, csrf = merchant
    japanese = client.post("/app/settings/scenarios/nope", data={"csrf": csrf}, headers=BROWSER)
    expired = client.post("/app/settings/standard-scenarios", data={"csrf": "old", "enabled": "1"}, headers=BROWSER)
    english = client.post("/app/settings/scenarios/nope?lang=en", data={"csrf": csrf}, headers=BROWSER)
    assert japanese.status_code == english.status_code == 404
    assert "「nope」というシナリオはありません" in japanese.text and "unknown scenario &#39;nope&#39;" in english.text
    assert expired.status_code == 403 and "読み込み直して" in expired.text


def test_a_program_reads_the_reason_in_both_languages_and_a_stable_code(runtime) -> None:  # type: ignore[no-untyped-def]
    answer = _client(runtime).get("/colorme/oauth/callback?code=c&state=s")
    body = answer.json()
    assert answer.status_code == 400 and body["code"] == "oauth_expired"
    assert "もう一度インストール" in body["error"] and "OAuth session expired" in body["detail"]
    assert "OAuth session expired" in _client(runtime).get("/colorme/oauth/callback?code=c&state=s&lang=en").json()["error"]


def test_an_unexpected_failure_is_a_calm_500_page_and_its_traceback_is_logged(runtime, caplog) -> None:  # type: ignore[no-untyped-def]
    app = create_app(runtime)

    @app.get("/broken")
    def broken() -> None:
        raise RuntimeError("a bug")

    answer = TestClient(app, raise_server_exceptions=False).get("/broken", headers=BROWSER)
    assert answer.status_code == 500 and "問題が発生しました" in answer.text and "RuntimeError" not in answer.text
    assert any(record.exc_info and "a bug" in str(record.exc_info[1]) for record in caplog.records)


@pytest.fixture
def live_server(runtime) -> Iterator[int]:  # type: ignore[no-untyped-def]
    """The app with a route that fails, served by uvicorn on a loopback port."""
    app = create_app(runtime)

    @app.get("/broken")
    def broken() -> None:
        raise RuntimeError("a bug")

    port = free_port()
    with serve(app, port, log_level="critical"):
        yield port


def test_after_a_500_the_same_keep_alive_connection_still_answers(live_server) -> None:  # type: ignore[no-untyped-def]
    connection = http.client.HTTPConnection("127.0.0.1", live_server, timeout=10)
    connection.request("GET", "/broken")
    failed = connection.getresponse()
    failed.read()
    connection.request("GET", "/healthz")  # the same socket: it was not closed after the 500
    healthy = connection.getresponse()
    assert failed.status == 500 and healthy.status == 200 and json.loads(healthy.read()) == {"status": "ok"}
    connection.close()

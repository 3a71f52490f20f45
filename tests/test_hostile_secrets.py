"""Secrets a stranger sends with bytes outside ASCII are simply wrong: refused with the usual 4xx,
never a 500 (issue 12: compared as str, they raised)."""
from __future__ import annotations

import json
import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from connectors.signatures import same_secret
from plugin.storage.models import MessageEvent, Shop
from plugin.web.app import create_app
from plugin.web.deps import SESSION_COOKIE, session_cookie
from tests.factories import idle_cart_shop

HOSTILE = ["ÿþ", "署名", "\u00e9" * 22, "é"]


@pytest.mark.parametrize("given", [*HOSTILE, "\ud800", ""])
def test_a_secret_with_any_characters_compares_unequal_without_raising(given: str) -> None:
    assert same_secret("abc", given) is False
    assert same_secret("\u00e9", "\u00e9") is True


@pytest.mark.parametrize("header", [b"\xff\xfe", "署名".encode(), b"\xc3\xa9" * 30])
def test_an_install_hook_with_a_non_ascii_signature_is_a_401(runtime, session, header) -> None:  # type: ignore[no-untyped-def]
    client = TestClient(create_app(runtime), raise_server_exceptions=False)
    answer = client.post("/colorme/hooks/install", content=json.dumps({"account_id": "PA12345678"}).encode(),
                         headers={"X-Appstore-Signature": header})  # type: ignore[dict-item]
    assert answer.status_code == 401
    assert session.execute(select(func.count()).select_from(Shop)).scalar() == 0


@pytest.mark.parametrize("tag", HOSTILE)
def test_open_and_click_links_with_a_non_ascii_tag_record_nothing(runtime, session, tag) -> None:  # type: ignore[no-untyped-def]
    client = TestClient(create_app(runtime), raise_server_exceptions=False)
    pixel = client.get(f"/t/o/1/{tag}.gif")
    click = client.get(f"/t/c/1/{tag}", params={"u": "https://evil.example/"}, follow_redirects=False)
    assert pixel.status_code == 200 and pixel.headers["content-type"] == "image/gif"
    assert click.status_code == 400 and "このリンクは無効です" in click.text
    assert session.execute(select(func.count()).select_from(MessageEvent)).scalar() == 0


@pytest.mark.parametrize("state", HOSTILE)
def test_an_oauth_callback_with_a_non_ascii_state_is_a_400(runtime, state) -> None:  # type: ignore[no-untyped-def]
    client = TestClient(create_app(runtime), raise_server_exceptions=False)
    client.get("/colorme/oauth/start?account_id=PA12345678", follow_redirects=False)
    answer = client.get("/colorme/oauth/callback", params={"code": "c", "state": state}, follow_redirects=False)
    assert answer.status_code == 400


@pytest.mark.parametrize("csrf", HOSTILE)
def test_a_settings_form_with_a_non_ascii_csrf_token_is_a_403_and_changes_nothing(runtime, session, clock, csrf) -> None:  # type: ignore[no-untyped-def]
    shop, _, _ = idle_cart_shop(session, clock.now(), customers=1)
    client = TestClient(create_app(runtime), raise_server_exceptions=False)
    client.cookies.set(SESSION_COOKIE, session_cookie(runtime, shop.id or 0))
    assert re.search(r'name="csrf" value="([^"]+)"', client.get("/app/settings").text)
    answer = client.post("/app/settings/rules", data={"csrf": csrf, "quiet_start_hour": "0", "quiet_end_hour": "0",
                                                      "cap_window_hours": "1", "cap_count": "10"})
    assert answer.status_code == 403
    session.expire_all()
    assert session.get(Shop, shop.id).cap_count == 1

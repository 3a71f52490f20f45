"""Rotating OKAERI_SECRET_KEY: links already mailed keep working while the old key stays in
OKAERI_PREVIOUS_SECRET_KEYS, new links use only the new key, and stored tokens are re-encrypted."""
from __future__ import annotations

import re

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import select

from plugin.cli import cli
from plugin.crypto import BadSignature, Signer, TokenCipher
from plugin.delivery.batch import deliver
from plugin.engine.tick import run_shop_tick
from plugin.runtime import build_runtime
from plugin.settings import ConfigError, Settings, load_settings
from plugin.storage.models import MessageEvent, Shop, Suppression
from plugin.web.app import create_app
from tests.conftest import SECRET
from tests.factories import idle_cart_shop, make_shop

NEW_KEY = "rotated-secret-key-fedcba9876543210fedcba98"


def _rotated(settings: Settings) -> Settings:
    return settings.model_copy(update={"secret_key": NEW_KEY, "previous_secret_keys": SECRET})


def _mailed_links(runtime, session, clock, catcher) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """A cart reminder delivered under the old key: its click link and its unsubscribe link."""
    shop, _, _ = idle_cart_shop(session, clock.now(), customers=1)
    for message_id, _ in run_shop_tick(runtime, shop.id):
        deliver(runtime, message_id)
    mail = catcher.snapshot()[0]
    click = re.search(r'http://okaeri\.test(/t/c/[^"\s]+)', mail.get_body(("html",)).get_content()).group(1)
    unsubscribe = mail["List-Unsubscribe"].strip().strip("<>").removeprefix("http://okaeri.test")
    return click.replace("&amp;", "&"), unsubscribe


def test_a_link_mailed_before_the_rotation_still_works_after_it(runtime, settings, engine, clock, broker, session,
                                                                catcher) -> None:  # type: ignore[no-untyped-def]
    click, unsubscribe = _mailed_links(runtime, session, clock, catcher)
    after = build_runtime(_rotated(settings), clock=clock, broker=broker, engine=engine)
    app = TestClient(create_app(after), follow_redirects=False)

    assert app.get(click).status_code == 302
    assert app.post(unsubscribe, data={"List-Unsubscribe": "One-Click"}).status_code == 200
    assert session.execute(select(Suppression)).first() is not None
    assert {kind for (kind,) in session.execute(select(MessageEvent.kind))} == {"click", "unsubscribe"}


def test_once_the_old_key_is_dropped_its_links_are_refused(runtime, settings, engine, clock, broker, session,
                                                          catcher) -> None:  # type: ignore[no-untyped-def]
    click, _ = _mailed_links(runtime, session, clock, catcher)
    dropped = settings.model_copy(update={"secret_key": NEW_KEY})
    app = TestClient(create_app(build_runtime(dropped, clock=clock, broker=broker, engine=engine)))

    answer = app.get(click)
    assert answer.status_code == 400 and "無効" in answer.text


def test_new_signatures_use_only_the_new_key() -> None:
    rotated = Signer(NEW_KEY, [SECRET])
    old = Signer(SECRET)
    new_only = Signer(NEW_KEY)

    tag = rotated.mac("42", "open")
    assert new_only.verify_mac("42", tag, "open") and not old.verify_mac("42", tag, "open")
    assert new_only.loads(rotated.dumps({"shop": 1}, "csrf"), "csrf") == {"shop": 1}
    with pytest.raises(BadSignature):
        old.loads(rotated.dumps({"shop": 1}, "csrf"), "csrf")
    # what the old key signed, the rotated signer still reads: cookies, sessions, timed values
    assert rotated.loads_timed(old.dumps_timed({"shop": 7}, "merchant-session"), "merchant-session", 60) == {"shop": 7}
    assert rotated.verify_mac("42", old.mac("42", "click"), "click")
    assert not rotated.verify_mac("43", old.mac("42", "click"), "click")


def test_rotate_secrets_re_encrypts_stored_tokens_under_the_new_key(settings, engine, session, clock,
                                                                   monkeypatch) -> None:  # type: ignore[no-untyped-def]
    shop = make_shop(session, clock.now(), access_token_encrypted=TokenCipher(SECRET).encrypt("shop-token"))
    for name, value in {"OKAERI_DATA_DIR": str(settings.data_dir), "DATABASE_URL": settings.effective_database_url,
                        "OKAERI_SECRET_KEY": NEW_KEY, "OKAERI_PREVIOUS_SECRET_KEYS": SECRET}.items():
        monkeypatch.setenv(name, value)

    result = CliRunner().invoke(cli, ["rotate-secrets"])

    assert result.exit_code == 0, result.output
    assert "re-encrypted 1 " in result.output
    session.expire_all()
    stored = session.get(Shop, shop.id).access_token_encrypted
    assert TokenCipher(NEW_KEY).decrypt(stored) == "shop-token"  # readable without the old key now


def test_rotate_secrets_without_the_old_key_says_so_and_keeps_the_token(settings, session, clock,
                                                                       monkeypatch) -> None:  # type: ignore[no-untyped-def]
    original = TokenCipher(SECRET).encrypt("shop-token")
    shop = make_shop(session, clock.now(), access_token_encrypted=original)
    for name, value in {"OKAERI_DATA_DIR": str(settings.data_dir), "DATABASE_URL": settings.effective_database_url,
                        "OKAERI_SECRET_KEY": NEW_KEY}.items():
        monkeypatch.setenv(name, value)

    result = CliRunner().invoke(cli, ["rotate-secrets"])

    assert result.exit_code == 1 and "OKAERI_PREVIOUS_SECRET_KEYS" in result.output
    session.expire_all()
    assert session.get(Shop, shop.id).access_token_encrypted == original


def test_a_short_previous_key_is_a_configuration_error() -> None:
    with pytest.raises(ConfigError, match="OKAERI_PREVIOUS_SECRET_KEYS"):
        load_settings(OKAERI_SECRET_KEY=NEW_KEY, OKAERI_PREVIOUS_SECRET_KEYS="short")

"""Every mail leaves signed (DKIM that dkimpy verifies) with a return path naming its message."""
from __future__ import annotations

import dkim
import pytest

from plugin.channels.base import OutgoingMessage
from plugin.channels.email import EmailChannel
from plugin.channels.verp import ReturnPath
from plugin.delivery.batch import deliver
from plugin.engine.tick import run_shop_tick
from plugin.settings import ConfigError, load_settings
from plugin.storage.models import Message
from tests.factories import idle_cart_shop
from tests.mail_fixtures import (  # noqa: F401 (fixtures)
    BOUNCE_DOMAIN,
    capture,
    dkim_key,
    mail_runtime,
    mail_settings,
)


def _mail(outbox_id: int = 0) -> OutgoingMessage:
    return OutgoingMessage(f"<1.cart_recovery.2.cart.{outbox_id}@okaeri>", "hanako@example.jp", "山田 花子", "テスト商店",
                           "【テスト商店】カートに商品が残っています", "本文です。\n" * 40, "<p>本文です。</p>" * 40,
                           "http://okaeri.test/u/token", outbox_id=outbox_id)


def _signed_headers(raw: bytes) -> list[str]:
    signature = raw.split(b"\r\n\r\n", 1)[0].decode().replace("\r\n\t", " ")
    tags = dict(part.strip().split("=", 1) for part in signature.split("DKIM-Signature:", 1)[1].split(";"))
    return tags["h"].split(":")


def test_a_delivered_reminder_carries_a_dkim_signature_dkimpy_verifies(mail_runtime, session, clock, capture, dkim_key):  # type: ignore[no-untyped-def]  # noqa: F811
    # Given a shop whose customer left a cart, and DKIM configured for the sending domain
    shop, people, _ = idle_cart_shop(session, clock.now(), customers=1)
    # When the reminder is delivered
    assert [deliver(mail_runtime, message_id)[0] for message_id, _ in run_shop_tick(mail_runtime, shop.id)] == ["sent"]
    # Then the bytes that came over SMTP verify against the published key
    (received,) = capture.mails
    assert received.raw.startswith(b"DKIM-Signature:")
    assert dkim.verify(received.raw, dnsfunc=dkim_key.dns)
    # and the signature covers the one-click unsubscribe pair Gmail and Yahoo require, and the sender
    assert {"from", "subject", "list-unsubscribe", "list-unsubscribe-post"} <= set(_signed_headers(received.raw))
    assert received.rcpt_tos == [people[0].email]


def test_a_mail_changed_in_transit_no_longer_verifies(mail_runtime, capture, dkim_key):  # type: ignore[no-untyped-def]  # noqa: F811
    mail_runtime.channels["email"].send(_mail(outbox_id=7))
    raw = capture.mails[0].raw
    assert dkim.verify(raw, dnsfunc=dkim_key.dns)
    assert not dkim.verify(raw.replace(b"\r\nSubject: ", b"\r\nSubject: RE: ", 1), dnsfunc=dkim_key.dns)
    tampered_body = raw[:-40] + b"A" * 4 + raw[-36:]
    assert not dkim.verify(tampered_body, dnsfunc=dkim_key.dns)
    second_link = raw.replace(b"List-Unsubscribe:", b"List-Unsubscribe: <https://evil.example/>\r\nList-Unsubscribe:", 1)
    assert not dkim.verify(second_link, dnsfunc=dkim_key.dns)  # over-signed: a link added in transit breaks it


def test_a_test_send_without_an_outbox_row_is_signed_too(mail_runtime, capture, dkim_key):  # type: ignore[no-untyped-def]  # noqa: F811
    mail_runtime.channels["email"].send(_mail(outbox_id=0))
    received = capture.mails[0]
    assert dkim.verify(received.raw, dnsfunc=dkim_key.dns)
    assert received.mail_from == "shop-mail@okaeri.test"  # no row to name: the plain sender


def test_each_message_goes_out_with_its_own_signed_return_path(mail_runtime, session, clock, capture):  # type: ignore[no-untyped-def]  # noqa: F811
    # Given two customers' reminders
    shop, _, _ = idle_cart_shop(session, clock.now(), customers=2)
    ids = [message_id for message_id, _ in run_shop_tick(mail_runtime, shop.id)]
    # When both are delivered
    assert [deliver(mail_runtime, message_id)[0] for message_id in ids] == ["sent", "sent"]
    # Then each envelope sender is bounces+<signed ref>@the bounce domain, naming its own row
    verp = ReturnPath(mail_runtime.signer, BOUNCE_DOMAIN)
    named = []
    for received in capture.mails:
        local, domain = received.mail_from.split("@")
        assert domain == BOUNCE_DOMAIN and local.startswith("bounces+") and len(local) <= 64
        ref = verp.ref_of_address(received.mail_from)
        assert ref is not None and f"X-Okaeri-Ref: {ref}\r\n".encode() in received.raw
        named.append(verp.outbox_id(ref))
    assert sorted(named) == sorted(ids)
    to_of = {m.id: m.to_address for m in session.query(Message).all()}
    assert {received.rcpt_tos[0] for received in capture.mails} == {to_of[i] for i in ids}


def test_a_guessed_return_path_does_not_verify(mail_runtime):  # type: ignore[no-untyped-def]  # noqa: F811
    verp = ReturnPath(mail_runtime.signer, BOUNCE_DOMAIN)
    ref = verp.ref(41)
    assert verp.outbox_id(ref) == 41 and verp.outbox_id(ref.upper()) == 41  # a receiver may fold the case
    assert verp.outbox_id(f"42-{ref.split('-')[1]}") is None  # another row's id with this tag
    assert verp.outbox_id("41-" + "0" * 32) is None and verp.outbox_id("41") is None and verp.outbox_id("") is None


def test_without_dkim_settings_mail_goes_unsigned_from_the_plain_sender(settings, catcher):  # type: ignore[no-untyped-def]
    channel = EmailChannel.from_settings(settings)
    try:
        assert channel.dkim is None and channel.return_path is None
        channel.send(_mail(outbox_id=3))
    finally:
        channel.close()
    (mail,) = catcher.snapshot()
    assert mail["DKIM-Signature"] is None and mail["X-Okaeri-Ref"] is None


@pytest.mark.parametrize(("env", "names"), [
    ({"OKAERI_DKIM_DOMAIN": "okaeri.test"}, "OKAERI_DKIM_SELECTOR"),
    ({"OKAERI_DKIM_DOMAIN": "okaeri.test", "OKAERI_DKIM_SELECTOR": "s1"}, "give the DKIM key once"),
    ({"OKAERI_DKIM_DOMAIN": "okaeri.test", "OKAERI_DKIM_SELECTOR": "s1", "OKAERI_DKIM_PRIVATE_KEY": "not a key"}, "not an unencrypted PEM"),
    ({"OKAERI_DKIM_DOMAIN": "okaeri.test", "OKAERI_DKIM_SELECTOR": "s1", "OKAERI_DKIM_PRIVATE_KEY_FILE": "/nonexistent.pem"},
     "not a readable file"),
])
def test_an_incomplete_or_broken_dkim_setting_stops_the_start_with_a_reason(env, names, tmp_path):  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match=names):
        load_settings(OKAERI_DATA_DIR=tmp_path, **env)


def test_a_pem_key_given_inline_with_escaped_newlines_is_accepted(dkim_key, tmp_path):  # type: ignore[no-untyped-def]  # noqa: F811
    inline = dkim_key.pem.decode().replace("\n", "\\n")
    settings = load_settings(OKAERI_DATA_DIR=tmp_path, OKAERI_DKIM_DOMAIN="okaeri.test", OKAERI_DKIM_SELECTOR="s1",
                             OKAERI_DKIM_PRIVATE_KEY=inline)
    assert settings.dkim_key_pem == dkim_key.pem


def test_a_return_path_made_before_a_key_rotation_still_verifies() -> None:
    from plugin.crypto import Signer

    old_key, new_key = "old-secret-key-0123456789abcdef0123456789", "new-secret-key-0123456789abcdef0123456789"
    before = ReturnPath(Signer(old_key), BOUNCE_DOMAIN).ref(5)
    after = ReturnPath(Signer(new_key, [old_key]), BOUNCE_DOMAIN)
    assert after.outbox_id(before) == 5 and after.ref(5) != before
    assert ReturnPath(Signer(new_key), BOUNCE_DOMAIN).outbox_id(before) is None  # the old key dropped: no longer

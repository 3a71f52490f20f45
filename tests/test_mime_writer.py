"""The mail delivery writes is byte for byte what the email package would write for it: mail
clients read the same headers and parts, and a DKIM signature covers the same bytes."""
from __future__ import annotations

import email
import hashlib
from email import policy
from email.header import Header
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import compat32
from email.utils import formataddr

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plugin.channels import email as email_channel
from plugin.channels.base import OutgoingMessage
from plugin.channels.email import build_mime

DATE = "Wed, 02 Dec 2026 21:33:07 GMT"


@pytest.fixture(autouse=True)
def fixed_date(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(email_channel, "formatdate", lambda **_: DATE)


def reference(message: OutgoingMessage, mail_from: str) -> bytes:
    """What build_mime wrote with the email.mime classes before it wrote mail itself."""
    mime = MIMEMultipart("alternative")
    mime["Subject"] = Header(message.subject, "utf-8")  # type: ignore[assignment]
    mime["From"] = formataddr((message.from_name, mail_from), charset="utf-8")
    mime["To"] = formataddr((message.to_name, message.to_address), charset="utf-8")
    mime["Date"] = DATE
    mime["Message-ID"] = message.message_id
    mime["List-Unsubscribe"] = f"<{message.unsubscribe_url}>"
    mime["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    mime.attach(MIMEText(message.body_text, "plain", "utf-8"))
    mime.attach(MIMEText(message.body_html, "html", "utf-8"))
    mime.set_boundary(f"==okaeri_{hashlib.sha256(message.message_id.encode()).hexdigest()[:24]}")
    return mime.as_bytes(policy=compat32.clone(linesep="\r\n"))


def mail(**changes: str) -> OutgoingMessage:
    fields = {"message_id": "<42.0f3a@okaeri>", "to_address": "hanako@example.jp", "to_name": "山田 花子",
              "from_name": "ベンチ商店", "subject": "【ベンチ商店】カートに商品が残っています",
              "body_text": "山田 花子 様\n\nカートに商品が残っています。\n", "body_html": "<p>山田 花子 様</p>",
              "unsubscribe_url": "https://okaeri.example/u/token"}
    return OutgoingMessage(**{**fields, **changes})  # type: ignore[arg-type]


@pytest.mark.parametrize("changes", [
    {},
    {"subject": "Your cart", "to_name": "", "from_name": "Shop"},
    {"subject": "【とても長い件名】" * 12, "from_name": "株式会社 ながいながい名前の商店" * 4},
    {"to_name": 'Taro "T" Yamada, Jr.', "from_name": "A & B (shop)"},
    {"unsubscribe_url": "https://okaeri.example/u/" + "x" * 300},
    {"body_text": "", "body_html": ""},
    {"body_text": "line\r\nwith crlf\rand cr\n" * 50, "body_html": "😀" * 500},
    {"subject": "=?utf-8?b?5bGx?= looks encoded", "to_name": "=?utf-8?q?x?="},
    {"subject": "  spaced   out\tsubject  ", "to_name": "  "},
    {"from_name": "\x1e", "to_name": "a\x0bb\x85c", "subject": "x\u2028y"},
])
def test_a_mail_is_byte_for_byte_what_the_email_package_writes(changes: dict[str, str]) -> None:
    message = mail(**changes)
    assert build_mime(message, "no-reply@okaeri.example") == reference(message, "no-reply@okaeri.example")


@settings(max_examples=300, deadline=None)
@given(subject=st.text(max_size=200), to_name=st.text(max_size=80), from_name=st.text(max_size=80),
       body_text=st.text(max_size=400), body_html=st.text(max_size=400),
       local=st.from_regex(r"[a-z0-9._+-]{1,30}", fullmatch=True))
def test_any_text_gives_the_same_bytes_as_the_email_package(subject: str, to_name: str, from_name: str, body_text: str,
                                                            body_html: str, local: str) -> None:
    message = mail(subject=subject, to_name=to_name, from_name=from_name, body_text=body_text, body_html=body_html,
                   to_address=f"{local}@example.jp")
    try:
        expected = reference(message, "no-reply@okaeri.example")
    except (UnicodeError, ValueError) as exc:  # lone surrogates: the email package refuses them, and so do we
        with pytest.raises(type(exc)):
            build_mime(message, "no-reply@okaeri.example")
        return
    assert build_mime(message, "no-reply@okaeri.example") == expected


def test_a_mail_client_reads_the_japanese_subject_names_and_both_parts() -> None:
    parsed = email.message_from_bytes(build_mime(mail(), "no-reply@okaeri.example"), policy=policy.default)
    assert parsed["Subject"] == "【ベンチ商店】カートに商品が残っています"
    assert parsed["To"].addresses[0].display_name == "山田 花子"
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    plain, html = (part.get_content() for part in parsed.iter_parts())
    assert plain == "山田 花子 様\n\nカートに商品が残っています。\n" and html == "<p>山田 花子 様</p>"

"""A relay that offers PIPELINING (RFC 2920) gets MAIL, RCPT and DATA in one write and the body
after its 354: two round trips a mail instead of four, the same bytes delivered, the same
outcomes when a command is refused, and nothing of a mail sent before its envelope is accepted."""
from __future__ import annotations

import smtplib
from collections.abc import Iterator
from email import message_from_bytes, policy

import pytest

from plugin.channels.base import OutgoingMessage, PermanentFailure, TemporaryFailure
from plugin.channels.email import EmailChannel, SmtpConfig
from tests.faulty_smtp import FaultySmtp  # and its `relay` fixture, both ways (a plugin of conftest)


@pytest.fixture
def channel(relay: FaultySmtp) -> Iterator[EmailChannel]:
    email = EmailChannel(SmtpConfig("127.0.0.1", relay.port, "", "", False, 5.0, "shop@okaeri.example"), pool_size=1)
    yield email
    email.close()


@pytest.fixture
def writes(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Every write a client makes to the relay after its greeting, in order."""
    sent: list[bytes] = []
    original = smtplib.SMTP.send

    def recorded(self: smtplib.SMTP, s: str | bytes) -> None:
        sent.append(s.encode("ascii") if isinstance(s, str) else s)
        original(self, s)

    monkeypatch.setattr(smtplib.SMTP, "send", recorded)
    return sent


def _mail(n: int, body: str = "こんにちは") -> OutgoingMessage:
    return OutgoingMessage(message_id=f"<m{n}@okaeri.example>", to_address=f"c{n}@example.jp", to_name="山田 花子",
                           from_name="お茶の店", subject="カートに商品が残っています", body_text=body,
                           body_html=f"<p>{body}</p>", unsubscribe_url="https://okaeri.example/u/x")


def _transfers(sent: list[bytes]) -> list[bytes]:
    return [w for w in sent if not w.lower().startswith((b"ehlo", b"helo", b"quit", b"rset"))]


def test_a_relay_that_pipelines_gets_each_mail_in_two_writes_and_the_others_in_four(
        relay: FaultySmtp, channel: EmailChannel, writes: list[bytes]) -> None:
    # When three mails go out on one pooled connection
    for n in range(3):
        channel.send(_mail(n))
    # Then each arrived once, and the envelope went in one write to a relay that pipelines
    assert sorted(relay.counts().values()) == [1, 1, 1]
    per_mail = 2 if relay.pipelining else 4
    assert len(_transfers(writes)) == 3 * per_mail
    if relay.pipelining:
        assert _transfers(writes)[0] == b"MAIL FROM:<shop@okaeri.example>\r\nRCPT TO:<c0@example.jp>\r\nDATA\r\n"


def test_a_line_that_starts_with_a_dot_arrives_as_written(relay: FaultySmtp, channel: EmailChannel,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a mail whose text has lines beginning with "." (a lone one would end DATA)
    received: list[bytes] = []
    monkeypatch.setattr(relay, "record", lambda content: received.append(content))
    channel.send(_mail(1, body=".\n..お茶\n.end"))
    # Then the relay received the text unchanged
    text = message_from_bytes(received[0], policy=policy.default).get_body(("plain",))
    assert text is not None and text.get_content().splitlines()[:3] == [".", "..お茶", ".end"]


def test_nothing_of_a_mail_is_sent_before_its_envelope_is_accepted(relay: FaultySmtp, channel: EmailChannel,
                                                                   writes: list[bytes]) -> None:
    # When a mail goes out, `ready` is called between the accepted envelope and the body
    seen: list[int] = []
    channel.send_after(_mail(1), lambda: seen.append(len(_transfers(writes))))
    assert seen == [2 if not relay.pipelining else 1]  # MAIL and RCPT, or the one envelope write
    assert len(relay.accepted) == 1


def test_a_refused_recipient_fails_that_mail_and_the_connection_serves_the_next(
        relay: FaultySmtp, channel: EmailChannel) -> None:
    # Given a relay that says the first recipient does not exist
    relay.rcpt_reply["c1@example.jp"] = "550 5.1.1 no such user"
    # When that mail and then another go out on the one pooled connection
    with pytest.raises(PermanentFailure) as refused:
        channel.send(_mail(1))
    channel.send(_mail(2))
    # Then the first failed as a bad address, the second arrived
    assert refused.value.bad_address
    assert relay.accepted == ["<m2@okaeri.example>"]


def test_a_refused_sender_is_a_temporary_failure_and_the_next_mail_goes_out(
        relay: FaultySmtp, channel: EmailChannel) -> None:
    # Given a relay that refuses the next MAIL FROM for now (4xx); with pipelining it then
    # answers the RCPT and DATA that came with it 503
    relay.mail_reply = "451 4.3.0 try again later"
    with pytest.raises(TemporaryFailure):
        channel.send(_mail(1))
    channel.send(_mail(2))
    assert relay.accepted == ["<m2@okaeri.example>"]


def test_a_mark_that_fails_before_the_body_sends_nothing_and_the_next_mail_goes_out(
        relay: FaultySmtp, channel: EmailChannel) -> None:
    # Given the hook between envelope and body fails (the previous mail's mark could not be confirmed)
    def failing() -> None:
        raise RuntimeError("mark store down")

    with pytest.raises(RuntimeError):
        channel.send_after(_mail(1), failing)
    # Then that mail was not delivered, and the next one is
    channel.send(_mail(2))
    assert relay.accepted == ["<m2@okaeri.example>"]


def test_a_refused_message_after_its_body_fails_and_the_next_mail_goes_out(
        relay: FaultySmtp, channel: EmailChannel) -> None:
    relay.data_reply["c1@example.jp"] = "554 5.6.0 message refused"
    with pytest.raises(PermanentFailure) as refused:
        channel.send(_mail(1))
    channel.send(_mail(2))
    assert not refused.value.bad_address
    assert relay.accepted == ["<m2@okaeri.example>"]


def test_a_relay_that_closed_the_idle_connection_is_reconnected_once(relay: FaultySmtp, channel: EmailChannel) -> None:
    # Given a pooled connection the relay has since closed (a restart, an idle timeout)
    channel.send(_mail(1))
    relay.restart()
    # When the next mail goes out, it goes on a new connection
    channel.send(_mail(2))
    assert relay.accepted == ["<m1@okaeri.example>", "<m2@okaeri.example>"]

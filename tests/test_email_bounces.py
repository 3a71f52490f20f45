"""Bounces (DSN) and complaints (ARF) that come back after a mail was accepted: the address is
suppressed as they call for, only for the shop whose message it was, and only on a signed return path."""
from __future__ import annotations

import html
import smtplib

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from plugin.channels.bounces.inbound import Inbox
from plugin.channels.bounces.parse import read_report
from plugin.channels.bounces.receiver import BounceReceiver
from plugin.channels.verp import ReturnPath
from plugin.delivery.batch import deliver
from plugin.demo.mailcatcher import free_port
from plugin.engine.tick import run_shop_tick
from plugin.storage.models import Customer, DeliveryReport, Message, MessageStatus, ReportKind, Shop, Suppression
from plugin.web.app import create_app
from plugin.web.deps import SESSION_COOKIE, session_cookie
from tests.factories import idle_cart_shop, make_customer, make_shop
from tests.mail_fixtures import (  # noqa: F401 (fixtures)
    BOUNCE_DOMAIN,
    capture,
    dkim_key,
    mail_runtime,
    mail_settings,
)


def dsn(status: str, *, recipient: str = "hanako@example.jp", action: str = "failed", original: bytes = b"",
        diagnostic: str = "smtp; 550 5.1.1 <hanako@example.jp>: Recipient address rejected: User unknown") -> bytes:
    """A delivery status notification as Postfix writes one (RFC 3464), the original's headers attached when given."""
    parts = [
        b"Content-Type: text/plain; charset=us-ascii\r\n\r\nI'm sorry to have to inform you that your message could not\r\n"
        b"be delivered to one or more recipients.\r\n",
        (f"Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.jp\r\n"
         f"Arrival-Date: Fri, 20 Nov 2026 12:00:00 +0900 (JST)\r\n\r\nFinal-Recipient: rfc822; {recipient}\r\n"
         f"Original-Recipient: rfc822;{recipient}\r\nAction: {action}\r\nStatus: {status}\r\n"
         f"Remote-MTA: dns; mx.example.jp\r\nDiagnostic-Code: {diagnostic}\r\n").encode(),
    ]
    if original:
        parts.append(b"Content-Type: text/rfc822-headers\r\n\r\n" + original.split(b"\r\n\r\n", 1)[0] + b"\r\n")
    return _report(b"delivery-status", b"Undelivered Mail Returned to Sender", parts)


def arf(original: bytes, feedback_type: str = "abuse") -> bytes:
    """A spam complaint from a mailbox provider's feedback loop (RFC 5965), the original attached."""
    parts = [
        b"Content-Type: text/plain; charset=us-ascii\r\n\r\nThis is an email abuse report for an email message received.\r\n",
        (f"Content-Type: message/feedback-report\r\n\r\nFeedback-Type: {feedback_type}\r\nUser-Agent: ExampleFBL/1.0\r\n"
         "Version: 1\r\nArrival-Date: Fri, 20 Nov 2026 12:00:00 +0900\r\nReported-Domain: okaeri.test\r\n").encode(),
        b"Content-Type: message/rfc822\r\nContent-Disposition: inline\r\n\r\n" + original,
    ]
    return _report(b"feedback-report", b"complaint about message", parts)


def _report(kind: bytes, subject: bytes, parts: list[bytes]) -> bytes:
    head = (b"From: MAILER-DAEMON@mx.example.jp\r\nTo: bounces@" + BOUNCE_DOMAIN.encode() + b"\r\nSubject: " + subject
            + b"\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=" + kind + b"; boundary=\"b0\"\r\n\r\n")
    return head + b"".join(b"--b0\r\n" + part + b"\r\n" for part in parts) + b"--b0--\r\n"


def _sent(session, shop, customer, now, n: int = 1) -> Message:  # type: ignore[no-untyped-def]
    message = Message(shop_id=shop.id, customer_id=customer.id, scenario_key="ranking", trigger_key=f"week:{n}",
                      trigger_kind="week", trigger_step=str(n), to_address=customer.email, status=MessageStatus.sent,
                      scheduled_at=now, created_at=now, sent_at=now)
    session.add(message)
    session.commit()
    session.refresh(message)
    return message


@pytest.fixture
def verp(mail_runtime) -> ReturnPath:  # type: ignore[no-untyped-def]  # noqa: F811
    return ReturnPath(mail_runtime.signer, BOUNCE_DOMAIN)


@pytest.fixture
def inbox(mail_runtime, verp) -> Inbox:  # type: ignore[no-untyped-def]  # noqa: F811
    return Inbox(mail_runtime.sessions, verp, mail_runtime.clock)


def _suppression(session, shop, address):  # type: ignore[no-untyped-def]
    session.expire_all()
    return session.execute(select(Suppression).where(Suppression.shop_id == shop.id, Suppression.address == address)).scalar()


def test_a_hard_bounce_suppresses_the_address_at_once(mail_runtime, session, clock, capture, inbox):  # type: ignore[no-untyped-def]  # noqa: F811
    # Given a reminder that the customer's server accepted, then found no such mailbox for
    shop, people, _ = idle_cart_shop(session, clock.now(), customers=1)
    assert [deliver(mail_runtime, i)[0] for i, _ in run_shop_tick(mail_runtime, shop.id)] == ["sent"]
    (sent,) = capture.mails
    # When its DSN comes back to the message's return path
    outcome = inbox.receive(dsn("5.1.1", recipient=people[0].email), [sent.mail_from])
    # Then the address is suppressed, its consent withdrawn, and the report kept with its code
    assert outcome == "suppressed"
    assert _suppression(session, shop, people[0].email).reason == "bounced"
    assert session.get(Customer, people[0].id).email_consent is False
    report = session.execute(select(DeliveryReport)).scalar_one()
    assert (report.kind, report.status, report.address) == (ReportKind.hard_bounce, "5.1.1", people[0].email)
    assert "User unknown" in report.detail


def test_a_soft_bounce_suppresses_only_when_it_repeats(mail_runtime, session, clock, inbox, verp):  # type: ignore[no-untyped-def]  # noqa: F811
    # Given three mails to one customer whose mailbox is full
    shop = make_shop(session, clock.now())
    customer = make_customer(session, shop, clock.now())
    messages = [_sent(session, shop, customer, clock.now(), n) for n in (1, 2, 3)]
    full = dsn("5.2.2", diagnostic="smtp; 552 5.2.2 Mailbox full")
    # When the first two bounce softly, the address stays
    for message in messages[:2]:
        assert inbox.receive(full, [verp.address(verp.ref(message.id))]) == "recorded"
        clock.advance(days=5)
    assert _suppression(session, shop, customer.email) is None
    assert session.get(Customer, customer.id).email_consent is True
    # Then the third within 30 days suppresses it
    assert inbox.receive(dsn("4.4.7", diagnostic="smtp; 450 4.4.7 gave up"), [verp.address(verp.ref(messages[2].id))]) == "suppressed"
    assert _suppression(session, shop, customer.email).reason == "bounced"


def test_soft_bounces_spread_over_more_than_30_days_do_not_suppress(mail_runtime, session, clock, inbox, verp):  # type: ignore[no-untyped-def]  # noqa: F811
    shop = make_shop(session, clock.now())
    customer = make_customer(session, shop, clock.now())
    for n in (1, 2, 3):
        message = _sent(session, shop, customer, clock.now(), n)
        assert inbox.receive(dsn("5.2.2"), [verp.address(verp.ref(message.id))]) == "recorded"
        clock.advance(days=16)
    assert _suppression(session, shop, customer.email) is None


def test_the_same_soft_bounce_delivered_twice_counts_once(mail_runtime, session, clock, inbox, verp):  # type: ignore[no-untyped-def]  # noqa: F811
    shop = make_shop(session, clock.now())
    customer = make_customer(session, shop, clock.now())
    message = _sent(session, shop, customer, clock.now())
    return_path = verp.address(verp.ref(message.id))
    assert [inbox.receive(dsn("5.2.2"), [return_path]) for _ in range(3)] == ["recorded", "duplicate", "duplicate"]
    assert _suppression(session, shop, customer.email) is None
    assert len(session.execute(select(DeliveryReport)).all()) == 1


def test_a_delay_notice_is_not_a_bounce(mail_runtime, session, clock, inbox, verp):  # type: ignore[no-untyped-def]  # noqa: F811
    shop = make_shop(session, clock.now())
    customer = make_customer(session, shop, clock.now())
    message = _sent(session, shop, customer, clock.now())
    assert inbox.receive(dsn("4.4.1", action="delayed"), [verp.address(verp.ref(message.id))]) == "not-a-report"
    assert session.execute(select(DeliveryReport)).first() is None


def test_a_spam_complaint_suppresses_the_address_at_once(mail_runtime, session, clock, capture, inbox):  # type: ignore[no-untyped-def]  # noqa: F811
    # Given a delivered reminder
    shop, people, _ = idle_cart_shop(session, clock.now(), customers=1)
    assert [deliver(mail_runtime, i)[0] for i, _ in run_shop_tick(mail_runtime, shop.id)] == ["sent"]
    (sent,) = capture.mails
    # When the mailbox provider's feedback loop reports it as spam, to the complaints address
    # (not the return path: the message is known only from the original attached)
    outcome = inbox.receive(arf(sent.raw), [f"fbl@{BOUNCE_DOMAIN}"])
    # Then the customer is never mailed again
    assert outcome == "suppressed"
    assert _suppression(session, shop, people[0].email).reason == "complained"
    report = session.execute(select(DeliveryReport)).scalar_one()
    assert report.kind == ReportKind.complaint and report.detail == "feedback-type abuse"


def test_a_not_spam_feedback_report_is_no_complaint() -> None:
    assert read_report(arf(b"Subject: hi\r\n\r\nhello\r\n", feedback_type="not-spam")) is None


def test_a_forged_return_path_is_ignored(mail_runtime, session, clock, inbox, verp):  # type: ignore[no-untyped-def]  # noqa: F811
    # Given a customer's sent message, and a stranger who knows (or guesses) its row id
    shop = make_shop(session, clock.now())
    customer = make_customer(session, shop, clock.now())
    message = _sent(session, shop, customer, clock.now())
    other = _sent(session, shop, customer, clock.now(), 2)
    forged = [f"bounces+{message.id}-{'0' * 32}@{BOUNCE_DOMAIN}",
              f"bounces+{message.id}-{verp.ref(other.id).split('-')[1]}@{BOUNCE_DOMAIN}"]  # another row's tag
    # When hard bounces arrive on forged return paths, and one with a forged ref quoted inside
    for address in forged:
        assert inbox.receive(dsn("5.1.1"), [address]) == "unmatched"
    quoted = f"X-Okaeri-Ref: {message.id}-{'f' * 32}\r\nSubject: x\r\n\r\n".encode()
    assert inbox.receive(dsn("5.1.1", original=quoted), [f"bounces@{BOUNCE_DOMAIN}"]) == "unmatched"
    # Then nothing is suppressed or recorded
    assert _suppression(session, shop, customer.email) is None
    assert session.execute(select(DeliveryReport)).first() is None


def test_a_bounce_for_another_shops_message_never_touches_this_shop(mail_runtime, session, clock, inbox, verp):  # type: ignore[no-untyped-def]  # noqa: F811
    # Given two shops with a customer of the same address, and a message of the other shop
    this_shop, other_shop = make_shop(session, clock.now()), make_shop(session, clock.now())
    ours = make_customer(session, this_shop, clock.now(), email="same@example.jp")
    theirs = make_customer(session, other_shop, clock.now(), email="same@example.jp")
    bystander = make_customer(session, this_shop, clock.now(), email="bystander@example.jp")
    their_message = _sent(session, other_shop, theirs, clock.now())
    # When a hard bounce of the other shop's message arrives, claiming this shop's bystander as recipient
    report = dsn("5.1.1", recipient=bystander.email)
    assert inbox.receive(report, [verp.address(verp.ref(their_message.id))]) == "suppressed"
    # Then only the other shop suppresses, and only the address its message went to
    assert _suppression(session, other_shop, "same@example.jp") is not None
    assert _suppression(session, this_shop, "same@example.jp") is None
    assert _suppression(session, this_shop, bystander.email) is None
    assert session.get(Customer, ours.id).email_consent is True
    assert {r.shop_id for r in session.execute(select(DeliveryReport)).scalars()} == {other_shop.id}


def test_a_bounce_in_an_old_non_dsn_format_is_read_too(mail_runtime, session, clock, inbox, verp):  # type: ignore[no-untyped-def]  # noqa: F811
    shop = make_shop(session, clock.now())
    customer = make_customer(session, shop, clock.now())
    message = _sent(session, shop, customer, clock.now())
    qmail = (b"From: MAILER-DAEMON@mx.example.jp\r\nTo: x\r\nSubject: failure notice\r\n\r\n"
             b"Hi. This is the qmail-send program at mx.example.jp.\r\n"
             b"I'm afraid I wasn't able to deliver your message to the following addresses.\r\n"
             b"This is a permanent error; I've given up. Sorry it didn't work out.\r\n\r\n"
             b"<" + customer.email.encode() + b">:\r\nSorry, no mailbox here by that name. (#5.1.1)\r\n\r\n"
             b"--- Below this line is a copy of the message.\r\n\r\nSubject: hi\r\n\r\nhello\r\n")
    assert inbox.receive(qmail, [verp.address(verp.ref(message.id))]) == "suppressed"
    assert _suppression(session, shop, customer.email).reason == "bounced"


def test_the_receiver_takes_reports_over_a_real_smtp_connection(mail_runtime, session, clock, capture, inbox):  # type: ignore[no-untyped-def]  # noqa: F811
    # Given `okaeri bounces` listening on loopback, and a delivered reminder
    receiver = BounceReceiver(inbox, "127.0.0.1", free_port()).start()
    try:
        shop, people, _ = idle_cart_shop(session, clock.now(), customers=1)
        assert [deliver(mail_runtime, i)[0] for i, _ in run_shop_tick(mail_runtime, shop.id)] == ["sent"]
        (sent,) = capture.mails
        with smtplib.SMTP(receiver.host, receiver.port, timeout=10) as remote:
            # When a remote server relays mail for another domain, it is refused (no open relay)
            with pytest.raises(smtplib.SMTPRecipientsRefused):
                remote.sendmail("", ["someone@elsewhere.example"], b"Subject: hi\r\n\r\nhi\r\n")
            # and when it returns the DSN (null sender) to the message's return path, it is taken
            assert remote.sendmail("", [sent.mail_from], dsn("5.1.1", recipient=people[0].email)) == {}
    finally:
        receiver.stop()
    # Then the address is suppressed
    assert _suppression(session, shop, people[0].email).reason == "bounced"
    assert session.get(Shop, shop.id) is not None


def test_the_customer_page_shows_bounces_and_complaints(mail_runtime, session, clock, inbox, verp):  # type: ignore[no-untyped-def]  # noqa: F811
    # Given a customer whose mail bounced softly once, and another's who complained
    shop = make_shop(session, clock.now())
    soft = make_customer(session, shop, clock.now(), email="full@example.jp")
    hard = make_customer(session, shop, clock.now(), email="gone@example.jp")
    soft_message, hard_message = _sent(session, shop, soft, clock.now()), _sent(session, shop, hard, clock.now())
    inbox.receive(dsn("5.2.2", diagnostic="smtp; 552 5.2.2 Mailbox full"), [verp.address(verp.ref(soft_message.id))])
    inbox.receive(dsn("5.1.1"), [verp.address(verp.ref(hard_message.id))])
    client = TestClient(create_app(mail_runtime), headers={"accept": "text/html"})
    client.cookies.set(SESSION_COOKIE, session_cookie(mail_runtime, shop.id))
    # When the merchant opens each customer's page
    gone = client.get(f"/app/customers/{hard.id}").text
    full = client.get(f"/app/customers/{soft.id}").text
    # Then the bounced address says it is suppressed and why, on its consent and on the message
    assert "配信停止（不達）" in gone and "5.1.1" in gone and "同意なし" in gone
    assert "受信側からの報告: 配信停止（不達） 5.1.1 (2026-11-20 12:00)" in gone
    # and the soft bounce is shown, counted, and has not stopped the mail
    assert "一時的な不達" in full and "直近30日で1回(3回で配信停止)" in full and "Mailbox full" in full
    assert "同意あり" in full
    english = html.unescape(client.get(f"/app/customers/{hard.id}", params={"lang": "en"}).text)
    assert "Suppressed (bounced)" in english and "Bounces and complaints" in english


@pytest.mark.parametrize("raw", [
    b"",
    b"\x00\xff\xfe garbage without headers",
    b"Subject: hello\r\n\r\nJust a reply from a person, not a report.\r\n",
    b"Content-Type: multipart/report; report-type=delivery-status; boundary=x\r\n\r\n--x--\r\n",
    b"Content-Type: multipart/report; report-type=delivery-status; boundary=x\r\n\r\n--x\r\n"
    b"Content-Type: message/delivery-status\r\n\r\nnot: fields\r\n\r\nAction: failed\r\nStatus: 9.9.9.9\r\n--x--\r\n",
    b"Content-Type: multipart/report; report-type=feedback-report; boundary=x\r\n\r\n--x\r\n"
    b"Content-Type: message/feedback-report\r\n\r\n\xff\xfe: \xff\r\n--x--\r\n",
])
def test_a_mail_that_is_no_readable_report_changes_nothing(raw: bytes) -> None:
    report = read_report(raw)
    assert report is None or report.report.kind == ReportKind.soft_bounce  # a failed action with a broken status


WEBHOOK_TOKEN = "relay-token-0123456789abcdef0123456789"


def test_a_relay_posts_a_bounce_to_the_webhook(mail_settings, mail_runtime, session, clock, capture):  # type: ignore[no-untyped-def]  # noqa: F811
    # Given the webhook switched on with a token, and a delivered reminder
    mail_runtime.settings = mail_settings.model_copy(update={"bounce_webhook_token": WEBHOOK_TOKEN})
    client = TestClient(create_app(mail_runtime))
    shop, people, _ = idle_cart_shop(session, clock.now(), customers=1)
    assert [deliver(mail_runtime, i)[0] for i, _ in run_shop_tick(mail_runtime, shop.id)] == ["sent"]
    (sent,) = capture.mails
    report = dsn("5.1.1", recipient=people[0].email, original=sent.raw)  # the original's headers quoted, X-Okaeri-Ref too
    # When a stranger posts it without the token, nothing happens
    refused = client.post("/mail/reports", content=report, headers={"authorization": "Bearer wrong"})
    assert refused.status_code == 401 and "署名を確認できませんでした" in refused.text
    assert _suppression(session, shop, people[0].email) is None
    # Then the relay, with the token, gets it handled: the reference quoted in the report finds the message
    taken = client.post("/mail/reports", content=report, headers={"authorization": f"Bearer {WEBHOOK_TOKEN}"})
    assert taken.status_code == 200 and taken.json() == {"outcome": "suppressed"}
    assert _suppression(session, shop, people[0].email).reason == "bounced"
    too_large = client.post("/mail/reports", content=b"x" * (10 * 1024 * 1024 + 1),
                            headers={"authorization": f"Bearer {WEBHOOK_TOKEN}"})
    assert too_large.status_code == 413


def test_the_webhook_is_absent_unless_configured(runtime) -> None:  # type: ignore[no-untyped-def]
    client = TestClient(create_app(runtime))
    assert client.post("/mail/reports", content=b"x", headers={"authorization": "Bearer x"}).status_code == 404


@pytest.mark.parametrize(("status", "diagnostic", "kind", "code"), [
    ("5.1.1", "smtp; 550 5.1.1 user unknown", ReportKind.hard_bounce, "5.1.1"),
    ("5.0.0", "smtp; 550 5.1.1 <x@example.jp>: user unknown", ReportKind.hard_bounce, "5.1.1"),  # the reply says more
    ("5.0.0", "smtp; 550 rejected", ReportKind.soft_bounce, "5.0.0"),
    ("5.2.2", "smtp; 552 5.2.2 mailbox full", ReportKind.soft_bounce, "5.2.2"),
    ("5.7.1", "smtp; 550 5.7.1 message refused as spam", ReportKind.soft_bounce, "5.7.1"),  # about the message, not the address
    ("5.2.1", "smtp; 550 5.2.1 account disabled", ReportKind.hard_bounce, "5.2.1"),
    ("4.4.7", "smtp; 450 4.4.7 retry timeout exceeded", ReportKind.soft_bounce, "4.4.7"),
])
def test_each_dsn_status_is_read_as_hard_or_soft(status: str, diagnostic: str, kind: ReportKind, code: str) -> None:
    inbound = read_report(dsn(status, diagnostic=diagnostic))
    assert inbound is not None and (inbound.report.kind, inbound.report.status) == (kind, code)

"""Delivery through a real SMTP server: correct Japanese MIME, once, and failures handled."""
from __future__ import annotations

import dataclasses
from datetime import timedelta

from sqlalchemy import func, select

from plugin.delivery.batch import deliver
from plugin.engine.tick import run_shop_tick
from plugin.jobs.work import tick_shop
from plugin.jobs.worker import start_worker
from plugin.storage import outbox
from plugin.storage.models import Message, MessageStatus, Suppression, rfc_message_id
from plugin.tasks import DELIVER_MESSAGES, SCENARIO_TICK
from tests.factories import idle_cart_shop, make_order


def _run_deliveries(runtime, ids):  # type: ignore[no-untyped-def]
    return [deliver(runtime, message_id)[0] for message_id, _ in ids]


def test_reminder_arrives_with_encoded_japanese_subject_and_one_click_unsubscribe(runtime, session, clock, catcher):  # type: ignore[no-untyped-def]
    shop, people, product = idle_cart_shop(session, clock.now(), customers=1)
    assert _run_deliveries(runtime, run_shop_tick(runtime, shop.id)) == ["sent"]
    mail = catcher.snapshot()[0]
    assert mail["Subject"] == "【テスト商店】カートに商品が残っています"
    assert "=?utf-8?b?" in mail.as_string().lower()
    assert mail["To"].addresses[0].addr_spec == people[0].email
    assert mail["From"].addresses[0].display_name == "テスト商店"
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert mail["List-Unsubscribe"].strip().startswith("<http://okaeri.test/u/")  # may be folded
    text = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    assert product.name in text and product.name in html
    assert "配信停止" in text and shop.sender_address in text  # 特定電子メール法 footer
    assert mail["List-Unsubscribe"].strip().strip("<>") in text


def test_message_is_not_sent_twice_when_delivered_twice(runtime, session, clock, catcher):  # type: ignore[no-untyped-def]
    shop, _, _ = idle_cart_shop(session, clock.now(), customers=1)
    ids = run_shop_tick(runtime, shop.id)
    assert _run_deliveries(runtime, ids + ids) == ["sent", "skipped"]
    assert len(catcher.snapshot()) == 1


def test_customer_who_ordered_after_the_reminder_was_queued_gets_nothing(runtime, session, clock, catcher):  # type: ignore[no-untyped-def]
    shop, people, product = idle_cart_shop(session, clock.now(), customers=1)
    ids = run_shop_tick(runtime, shop.id)
    make_order(session, shop, people[0], clock.now(), [product])
    assert _run_deliveries(runtime, ids) == ["cancelled"]
    assert catcher.snapshot() == []


def test_address_unsubscribed_after_queueing_gets_nothing(runtime, session, clock, catcher):  # type: ignore[no-untyped-def]
    shop, people, _ = idle_cart_shop(session, clock.now(), customers=1)
    ids = run_shop_tick(runtime, shop.id)
    session.add(Suppression(shop_id=shop.id, channel="email", address=people[0].email, reason="unsubscribed",
                            created_at=clock.now()))
    session.commit()
    outcomes = _run_deliveries(runtime, ids)
    assert outcomes == ["cancelled"] and catcher.snapshot() == []


def test_rejected_address_is_suppressed_and_not_retried(runtime, session, clock, catcher):  # type: ignore[no-untyped-def]
    shop, people, _ = idle_cart_shop(session, clock.now(), customers=1)
    ids = run_shop_tick(runtime, shop.id)
    catcher.reject = {people[0].email: "550 5.1.1 no such user"}
    assert _run_deliveries(runtime, ids) == ["failed"]
    suppressed = session.execute(select(Suppression.reason).where(Suppression.address == people[0].email)).scalar()
    assert suppressed == "bounced"


def test_smtp_down_means_retry_later_not_loss(runtime, session, clock, catcher):  # type: ignore[no-untyped-def]
    shop, _, _ = idle_cart_shop(session, clock.now(), customers=1)
    ids = run_shop_tick(runtime, shop.id)
    catcher.stop()
    outcome, retry_at = deliver(runtime, ids[0][0])
    assert outcome == "retry" and retry_at == clock.now() + timedelta(minutes=1)
    session.expire_all()
    message = session.get(Message, ids[0][0])
    assert message.status == MessageStatus.pending and "cannot connect" in message.last_error
    catcher.start()
    email = runtime.channels["email"]
    email.config = dataclasses.replace(email.config, port=catcher.port)
    clock.advance(minutes=2)
    assert deliver(runtime, ids[0][0])[0] == "sent"


def test_send_interrupted_after_claim_is_retried_with_the_same_message_id(runtime, session, clock, catcher):  # type: ignore[no-untyped-def]
    # Given a worker that claimed a message and died before sending
    shop, _, _ = idle_cart_shop(session, clock.now(), customers=1)
    (message_id, _), = run_shop_tick(runtime, shop.id)
    assert [m.id for m in outbox.claim_many(session, [message_id], clock.now())] == [message_id]
    assert deliver(runtime, message_id)[0] == "skipped"  # lease still held
    # When the lease runs out
    clock.advance(minutes=6)
    assert [m for m, _ in outbox.due_for_enqueue(session, clock.now())] == [message_id]
    # Then it is delivered once, with the Message-ID its idempotency key gives on every attempt
    assert deliver(runtime, message_id)[0] == "sent"
    message = session.get(Message, message_id)
    assert [m["Message-ID"] for m in catcher.snapshot()] == [rfc_message_id(message)]
    assert rfc_message_id(message) == f"<{shop.id}.cart_recovery.{message.customer_id}.{message.trigger_key.replace(':', '.')}@okaeri>"


def test_worker_delivers_through_the_broker(runtime, session, clock, catcher):  # type: ignore[no-untyped-def]
    shop, people, _ = idle_cart_shop(session, clock.now(), customers=5)
    worker = start_worker(runtime, threads=2)
    try:
        runtime.tasks.scenario_tick(shop.id)
        runtime.broker.join(SCENARIO_TICK.queue_name, timeout=20_000)
        runtime.broker.join(DELIVER_MESSAGES.queue_name, timeout=20_000)
        worker.join()
    finally:
        worker.stop()
    assert sorted(m["To"].addresses[0].addr_spec for m in catcher.snapshot()) == sorted(p.email for p in people)


def test_a_body_quoting_mime_markers_still_reads_as_two_parts() -> None:
    """Whatever a shop writes, the plain and HTML parts arrive whole (the boundary is ours, fixed)."""
    import email
    from email import policy

    from plugin.channels.base import OutgoingMessage
    from plugin.channels.email import build_mime

    text = "--==okaeri_x\nContent-Type: text/html\n\n本文です\n--\n.\n"
    mail = OutgoingMessage("<1.abc@okaeri>", "c@example.jp", "山田 花子", "テスト商店", "件名", text, f"<pre>{text}</pre>",
                           "https://okaeri.test/u/1.2.3.x")
    parsed = email.message_from_bytes(build_mime(mail, "no-reply@okaeri.example"), policy=policy.default)
    assert parsed.get_content_type() == "multipart/alternative" and len(parsed.get_payload()) == 2
    assert parsed.get_body(("plain",)).get_content() == text
    assert parsed.get_body(("html",)).get_content() == f"<pre>{text}</pre>"


def test_a_large_tick_leaves_the_outbox_statistics_delivery_plans_with(runtime, session, clock, monkeypatch):  # type: ignore[no-untyped-def]
    # Right after a big tick, delivery claims by id and re-checks the cap per customer; with
    # statistics from an empty outbox PostgreSQL read every pending row for each batch of 50.
    from sqlalchemy import text

    shop, people, _ = idle_cart_shop(session, clock.now(), customers=6)
    monkeypatch.setattr(outbox, "ANALYZE_AFTER", 5)
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:
        session.execute(text("ANALYZE messages"))  # statistics of the empty outbox
        session.commit()
    tick_shop(runtime, shop.id)  # the scenario tick actor's body, in this thread
    written = session.execute(select(func.count()).select_from(Message)).scalar()
    assert written == len(people)
    if postgres:
        rows, visible = session.execute(text(
            "SELECT reltuples, relallvisible FROM pg_class WHERE oid = 'messages'::regclass")).one()
        assert rows == len(people)
        # and vacuumed: the new rows' pages are all-visible, so index-only probes skip the heap
        assert visible > 0
    # below the threshold nothing is analysed (and on SQLite never)
    assert outbox.analyze_if_grown(session, outbox.high_water(session) - 1) is False


def test_a_dead_workers_claim_is_swept_even_behind_a_backlog_of_lost_hand_offs(runtime, session, clock):  # type: ignore[no-untyped-def]
    # Given five reminders claimed by a worker that died, and more lost hand-offs than one
    # sweep takes
    shop, _, _ = idle_cart_shop(session, clock.now(), customers=12)
    ids = [message_id for message_id, _ in run_shop_tick(runtime, shop.id)]
    claimed = [m.id for m in outbox.claim_many(session, ids[:5], clock.now())]
    # When the leases run out and the hand-offs of the others have gone stale
    clock.advance(minutes=11)
    swept = [message_id for message_id, _ in outbox.due_for_enqueue(session, clock.now(), limit=6)]
    # Then the first sweep hands over every expired claim, then what room is left
    assert set(claimed) <= set(swept) and len(swept) == 6

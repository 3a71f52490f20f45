"""Delivery keeps its promise when things break: a real SMTP server on loopback that misbehaves
(4xx, 5xx, silence, cut connections, restarts), a database connection lost mid-batch, a Redis
restart. Nothing is lost, nothing is sent twice beyond the one transfer in flight, nothing is
retried forever. Sends are counted by the Message-IDs the server accepted."""
from __future__ import annotations

import re
import shutil
import subprocess
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import event, select

from plugin.delivery import batch as batch_module
from plugin.delivery.batch import deliver, deliver_batch
from plugin.demo.mailcatcher import free_port
from plugin.engine.tick import run_shop_tick
from plugin.jobs.broker import build_broker
from plugin.jobs.worker import start_worker
from plugin.runtime import build_runtime
from plugin.storage import outbox
from plugin.storage.marks import MarkUnavailable
from plugin.storage.models import Customer, Message, MessageStatus, Suppression, rfc_message_id
from tests.conftest import require_service
from tests.factories import idle_cart_shop
from tests.faulty_smtp import FaultySmtp  # and its `relay` fixture, both ways (a plugin of conftest)
from tests.live import wait_until


@pytest.fixture
def faulty_runtime(settings, engine, clock, broker, relay):  # type: ignore[no-untyped-def]
    """The test runtime, sending to the misbehaving relay with a short SMTP timeout."""
    # 2 s, not less: a full garbage collection of the suite's heap in mid-conversation once
    # outlasted 0.5 s, and a healthy relay counted as down
    settings = settings.model_copy(update={"smtp_port": relay.port, "smtp_timeout": 2.0})
    runtime = build_runtime(settings, clock=clock, broker=broker, engine=engine)
    yield runtime
    runtime.close_channels()


def _reminders(runtime, session, clock, customers: int = 1):  # type: ignore[no-untyped-def]
    shop, people, _ = idle_cart_shop(session, clock.now(), customers=customers)
    ids = [message_id for message_id, _ in run_shop_tick(runtime, shop.id)]
    return people, ids


def _message_ids(session, ids: list[int]) -> list[str]:  # type: ignore[no-untyped-def]
    session.expire_all()
    return [rfc_message_id(session.get(Message, message_id)) for message_id in ids]


def _statuses(session) -> set[str]:  # type: ignore[no-untyped-def]
    session.expire_all()
    return set(session.execute(select(Message.status)).scalars())


def test_a_4xx_reply_is_retried_with_backoff_and_then_arrives_once(faulty_runtime, session, clock, relay) -> None:  # type: ignore[no-untyped-def]
    # Given a relay that answers "try later" for the customer's address
    people, ids = _reminders(faulty_runtime, session, clock)
    relay.rcpt_reply = {people[0].email: "451 4.3.0 mailbox busy, try later"}
    # When delivery tries, then tries again once the backoff has passed and the relay takes it
    outcome, retry_at = deliver(faulty_runtime, ids[0])
    assert (outcome, retry_at) == ("retry", clock.now() + outbox.backoff(1))
    assert deliver(faulty_runtime, ids[0])[0] == "skipped"  # not before its time
    relay.rcpt_reply = {}
    clock.advance(minutes=1)
    assert deliver(faulty_runtime, ids[0])[0] == "sent"
    # Then it arrived once
    assert relay.counts() == {_message_ids(session, ids)[0]: 1}


def test_a_4xx_that_never_ends_fails_the_message_after_its_last_attempt(faulty_runtime, session, clock, relay) -> None:  # type: ignore[no-untyped-def]
    people, ids = _reminders(faulty_runtime, session, clock)
    relay.rcpt_reply = {people[0].email: "452 4.2.2 over quota"}
    outcomes = []
    for _ in range(outbox.MAX_ATTEMPTS + 2):
        outcome, retry_at = deliver(faulty_runtime, ids[0])
        outcomes.append(outcome)
        if retry_at is None:
            break
        clock.at = retry_at
    assert outcomes == ["retry"] * (outbox.MAX_ATTEMPTS - 1) + ["failed"]
    message = session.get(Message, ids[0])
    session.refresh(message)
    assert message.status == MessageStatus.failed and "gave up" in message.last_error
    assert session.execute(select(Suppression)).first() is None  # a full mailbox is not a bad address


def test_a_5xx_saying_the_address_is_bad_fails_and_suppresses_it(faulty_runtime, session, clock, relay) -> None:  # type: ignore[no-untyped-def]
    people, ids = _reminders(faulty_runtime, session, clock)
    relay.rcpt_reply = {people[0].email: "550 5.1.1 <nobody@example.jp>: user unknown"}
    assert deliver(faulty_runtime, ids[0])[0] == "failed"
    assert session.execute(select(Suppression.reason).where(Suppression.address == people[0].email)).scalar() == "bounced"
    assert relay.counts() == {}


def test_a_5xx_refusing_the_message_fails_it_but_keeps_the_address(faulty_runtime, session, clock, relay) -> None:  # type: ignore[no-untyped-def]
    # Given a relay that refuses the content (a policy decision, not a bad mailbox)
    people, ids = _reminders(faulty_runtime, session, clock)
    relay.data_reply = {people[0].email: "554 5.7.1 message refused by policy"}
    # When it is delivered
    assert deliver(faulty_runtime, ids[0])[0] == "failed"
    # Then the message failed with the reason, and the customer can still get the next one
    message = session.get(Message, ids[0])
    session.refresh(message)
    assert message.status == MessageStatus.failed and "5.7.1" in message.last_error
    assert session.execute(select(Suppression)).first() is None
    customer = session.get(Customer, people[0].id)
    session.refresh(customer)
    assert customer.email_consent is True


def test_a_relay_that_stops_answering_is_given_up_on_and_retried_once_later(faulty_runtime, session, clock, relay) -> None:  # type: ignore[no-untyped-def]
    # Given a relay that takes the body and then says nothing (the client's timeout runs out)
    _, ids = _reminders(faulty_runtime, session, clock)
    relay.hang_in_data = 1
    # When delivery tries: it does not send the body again on another connection right away
    assert deliver(faulty_runtime, ids[0])[0] == "retry"
    assert relay.counts() == {}
    message = session.get(Message, ids[0])
    session.refresh(message)
    assert message.status == MessageStatus.pending and "outcome unknown" in message.last_error
    # Then, after the backoff, it arrives once
    clock.advance(minutes=1)
    assert deliver(faulty_runtime, ids[0])[0] == "sent"
    assert relay.counts() == {_message_ids(session, ids)[0]: 1}


def test_a_connection_dropped_mid_data_retries_that_message_and_sends_the_rest(faulty_runtime, session, clock, relay) -> None:  # type: ignore[no-untyped-def]
    # Given three reminders in one batch and a relay that cuts the first transfer off
    _, ids = _reminders(faulty_runtime, session, clock, customers=3)
    relay.drop_in_data = 1
    # When the batch is delivered
    outcomes = deliver_batch(faulty_runtime, ids)
    # Then the cut one waits for a retry, the others went out on a new connection
    assert sorted(o for o, _ in outcomes.values()) == ["retry", "sent", "sent"]
    clock.advance(minutes=1)
    deliver_batch(faulty_runtime, ids)
    assert sorted(relay.counts().values()) == [1, 1, 1]
    assert set(relay.counts()) == set(_message_ids(session, ids))
    assert _statuses(session) == {MessageStatus.sent}


def test_a_reply_lost_after_the_relay_accepted_is_resent_once_with_the_same_message_id(faulty_runtime, session, clock, relay) -> None:  # type: ignore[no-untyped-def]
    # The one case no sender can tell apart from a failure: the transfer in flight. It goes
    # again once, as the same mail (a receiving system can tell it by its Message-ID).
    _, ids = _reminders(faulty_runtime, session, clock)
    relay.accept_then_drop = 1
    assert deliver(faulty_runtime, ids[0])[0] == "retry"
    clock.advance(minutes=1)
    assert deliver(faulty_runtime, ids[0])[0] == "sent"
    assert relay.counts() == {_message_ids(session, ids)[0]: 2}
    assert deliver(faulty_runtime, ids[0])[0] == "skipped"


def test_a_relay_restart_between_batches_costs_nothing(faulty_runtime, session, clock, relay) -> None:  # type: ignore[no-untyped-def]
    # Given pooled connections from a first batch, and a relay that restarts (closing them all)
    _, ids = _reminders(faulty_runtime, session, clock, customers=4)
    assert [o for o, _ in deliver_batch(faulty_runtime, ids[:2]).values()] == ["sent", "sent"]
    relay.restart()
    # When the next batch is delivered on the stale connections
    outcomes = deliver_batch(faulty_runtime, ids[2:])
    # Then each was replaced before anything was sent on it: everything arrived, once
    assert [o for o, _ in outcomes.values()] == ["sent", "sent"]
    assert sorted(relay.counts().values()) == [1, 1, 1, 1]


def test_a_relay_that_is_down_leaves_the_whole_batch_for_later_and_then_sends_it_once(faulty_runtime, session, clock, relay) -> None:  # type: ignore[no-untyped-def]
    # Given a relay that is down (restarting) when a batch of three comes
    _, ids = _reminders(faulty_runtime, session, clock, customers=3)
    relay.stop()
    # When the batch is delivered: one connection attempt, the rest not tried, all retried later
    outcomes = deliver_batch(faulty_runtime, ids)
    assert [o for o, _ in outcomes.values()] == ["retry"] * 3
    session.expire_all()
    assert all("not tried" in m.last_error for m in session.execute(select(Message)).scalars() if m.id != ids[0])
    # Then once the relay is back, each arrives once
    relay.start()
    clock.advance(minutes=1)
    deliver_batch(faulty_runtime, ids)
    assert sorted(relay.counts().values()) == [1, 1, 1]
    assert _statuses(session) == {MessageStatus.sent}


def _cut_database_connection(engine, times: int, after: int = 0) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """Close the database connection under `times` "mark sent" statements, after letting `after`
    through: what a connection the server or the network dropped looks like to the driver."""
    state = {"seen": 0, "cut": 0}

    @event.listens_for(engine, "before_cursor_execute")
    def cut(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        # (the settle's UPDATE may be led by the rollup's upserts, WITH …)
        if re.match(r"(WITH .*)?UPDATE messages SET", statement) and re.search(r"\bsent_at\s*=", statement):
            state["seen"] += 1
            if after < state["seen"] <= after + times:
                state["cut"] += 1
                conn.connection.dbapi_connection.close()

    return state


@pytest.fixture
def database_marks(monkeypatch):  # type: ignore[no-untyped-def]
    """Marks in the database row itself (PostgreSQL without Redis): no journal, no Redis marks."""
    monkeypatch.setattr(batch_module, "_open_store", lambda runtime: None)


@pytest.mark.usefixtures("database_marks")
def test_a_database_connection_lost_mid_batch_is_replaced_and_nothing_repeats(faulty_runtime, session, clock, relay, engine) -> None:  # type: ignore[no-untyped-def]
    # Given a batch of four, and the database connection dropping as the second is marked sent
    _, ids = _reminders(faulty_runtime, session, clock, customers=4)
    state = _cut_database_connection(engine, 1, after=1)
    # When the batch is delivered
    outcomes = deliver_batch(faulty_runtime, ids)
    # Then the mark went through on a new connection: all sent, each once
    assert state["cut"] == 1
    assert [o for o, _ in outcomes.values()] == ["sent"] * 4
    assert sorted(relay.counts().values()) == [1, 1, 1, 1]
    assert _statuses(session) == {MessageStatus.sent}


@pytest.mark.usefixtures("database_marks")
def test_a_database_gone_mid_batch_stops_the_batch_and_resends_at_most_the_one_in_flight(  # type: ignore[no-untyped-def]
        faulty_runtime, session, clock, relay, engine) -> None:
    # Given a batch of four and a database that goes away for good as the first is marked sent
    _, ids = _reminders(faulty_runtime, session, clock, customers=4)
    state = _cut_database_connection(engine, outbox.SentMarks.TRIES)
    # When the batch is delivered, it stops: no more mail goes out that it could not record
    with pytest.raises(Exception):  # noqa: B017 - whatever the driver raises for a closed connection
        deliver_batch(faulty_runtime, ids)
    assert state["cut"] == outbox.SentMarks.TRIES and len(relay.counts()) == 1
    # Then, with the database back and the leases run out, the sweep hands them over and they go
    clock.advance(seconds=outbox.LEASE.total_seconds() + 1)
    with faulty_runtime.sessions() as fresh:
        swept = [message_id for message_id, _ in outbox.due_for_enqueue(fresh, clock.now())]
    assert sorted(swept) == sorted(ids)
    deliver_batch(faulty_runtime, swept)
    counts = relay.counts()
    assert set(counts) == set(_message_ids(session, ids))
    assert sum(counts.values()) - len(counts) <= 1  # the one in flight when the database went
    assert _statuses(session) == {MessageStatus.sent}


def test_mails_accepted_before_the_settle_failed_are_settled_at_the_next_claim_not_sent_again(  # type: ignore[no-untyped-def]
        faulty_runtime, session, clock, relay, engine) -> None:
    # Given a batch of four, all accepted and marked (journal or Redis), then the database going
    # away as the batch settles them: the rows are left in `sending`, as a worker killed there leaves them
    assert batch_module.marks_for(faulty_runtime) is not None
    _, ids = _reminders(faulty_runtime, session, clock, customers=4)
    state = _cut_database_connection(engine, 1)
    with pytest.raises(Exception):  # noqa: B017 - whatever the driver raises for a closed connection
        deliver_batch(faulty_runtime, ids)
    assert state["cut"] == 1 and sorted(relay.counts().values()) == [1, 1, 1, 1]
    assert _statuses(session) == {MessageStatus.sending}
    # When their leases run out and the sweep hands them to another worker
    clock.advance(seconds=outbox.LEASE.total_seconds() + 1)
    with faulty_runtime.sessions() as fresh:
        swept = [message_id for message_id, _ in outbox.due_for_enqueue(fresh, clock.now())]
    assert sorted(swept) == sorted(ids)
    outcomes = deliver_batch(faulty_runtime, swept)
    # Then its claim finds the marks and settles them as sent: nobody gets the mail twice
    assert [o for o, _ in outcomes.values()] == ["sent"] * 4
    assert sorted(relay.counts().values()) == [1, 1, 1, 1]
    assert _statuses(session) == {MessageStatus.sent}


def test_a_slow_batch_keeps_its_leases_while_its_worker_lives(faulty_runtime, session, clock, relay, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # Given a batch of three that takes a while (a slow relay) and a quick heartbeat
    monkeypatch.setattr(outbox, "RENEW_EVERY", timedelta(seconds=0.05))
    _, ids = _reminders(faulty_runtime, session, clock, customers=4)
    relay.delay = 0.3  # under the client's 2 s timeout
    results: dict[int, tuple[str, object]] = {}
    worker = threading.Thread(target=lambda: results.update(deliver_batch(faulty_runtime, ids)))
    worker.start()
    try:
        # When more time than a lease passes while it runs, and the sweeper looks
        assert wait_until(lambda: len(relay.counts()) >= 1, timeout=10)
        for _ in range(2):
            clock.advance(seconds=outbox.LEASE.total_seconds() * 2 / 3)
            assert wait_until(lambda: _lease_left(faulty_runtime, ids) > outbox.LEASE / 2 or not worker.is_alive(),
                              timeout=10)
        with faulty_runtime.sessions() as other:
            swept = outbox.due_for_enqueue(other, clock.now())
    finally:
        worker.join(timeout=20)
    # Then nothing of it was taken from the living worker, and it finished the batch
    assert [m for m, _ in swept if m in ids] == []
    assert [o for o, _ in results.values()] == ["sent"] * 4
    assert sorted(relay.counts().values()) == [1, 1, 1, 1]


def _lease_left(runtime, ids: list[int]) -> timedelta:  # type: ignore[no-untyped-def]
    """The shortest lease left among these messages still being sent (a day when none is)."""
    with runtime.sessions() as other:
        leases = other.execute(select(Message.lease_until).where(
            Message.id.in_(ids), Message.status == MessageStatus.sending)).scalars().all()  # type: ignore[union-attr]
    return min((until.replace(tzinfo=runtime.clock.now().tzinfo) - runtime.clock.now() for until in leases),
               default=timedelta(days=1))


def test_a_dead_workers_claim_is_free_again_within_a_minute(faulty_runtime, session, clock, relay) -> None:  # type: ignore[no-untyped-def]
    # Given a worker that claimed a batch and died (no heartbeat renews its leases)
    _, ids = _reminders(faulty_runtime, session, clock, customers=2)
    outbox.claim_many(session, ids, clock.now())
    # When its lease has run out, well within a minute, and the sweeper looks
    clock.advance(seconds=outbox.LEASE.total_seconds() + 1)
    assert clock.now() - timedelta(seconds=60) < clock.now() - outbox.LEASE
    swept = [message_id for message_id, _ in outbox.due_for_enqueue(session, clock.now())]
    # Then the sweeper hands them over and they are delivered once
    assert sorted(swept) == sorted(ids)
    deliver_batch(faulty_runtime, swept)
    assert sorted(relay.counts().values()) == [1, 1]


def _wait_for_port(port: int) -> None:
    import socket

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"redis on {port} did not start")


@pytest.mark.service
@pytest.mark.slow
def test_a_redis_restart_that_loses_the_queue_loses_no_mail_and_repeats_none(settings, engine, clock, session, relay, tmp_path) -> None:  # type: ignore[no-untyped-def]
    # Given a Redis of our own, reminders handed to it, and no worker running yet
    binary = shutil.which("redis-server")
    require_service("Redis", binary is not None, "redis-server not installed")
    port = free_port()
    command = [str(binary), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
               "--dir", str(tmp_path)]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    _wait_for_port(port)
    url = f"redis://127.0.0.1:{port}/0"

    def process():  # type: ignore[no-untyped-def]
        return build_runtime(settings.model_copy(update={"smtp_port": relay.port}), clock=clock, engine=engine,
                             broker=build_broker(url, namespace="okaeri-faults"))

    first, second = process(), process()
    workers = []
    try:
        shop, people, _ = idle_cart_shop(session, clock.now(), customers=5)
        handed = run_shop_tick(first, shop.id)
        first.tasks.deliver(handed[:2], clock.now())
        workers.append(start_worker(first, threads=2))
        assert wait_until(lambda: len(relay.counts()) >= 2, timeout=20)
        workers.pop().stop()
        first.tasks.deliver(handed[2:], clock.now())
        # When Redis restarts and comes back empty (no persistence), and a worker starts
        server.kill()
        server.wait()
        server = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        _wait_for_port(port)
        workers.append(start_worker(second, threads=2))
        # Then the sweep hands the lost hand-offs over once they are stale, and each mail arrives once
        clock.advance(seconds=outbox.STALE_ENQUEUE.total_seconds() + 1)
        second.tasks.sweep_outbox()
        assert wait_until(lambda: len(relay.counts()) >= 5, timeout=30)
        time.sleep(0.5)  # let any second hand-off run out
    finally:
        for worker in workers:
            worker.stop()
        for runtime in (first, second):
            runtime.close()
        server.kill()
        server.wait()
    assert sorted(relay.counts().values()) == [1] * 5
    assert set(relay.counts()) == {rfc_message_id(m) for m in session.execute(select(Message)).scalars()}


class _RecordingMarks:
    """A mark store that notes, each time a mark is confirmed, how many mails the relay had
    accepted by then; its replies fail for the ids in `failing` (as a Redis restart would)."""

    def __init__(self, relay: FaultySmtp, failing: set[int] | None = None) -> None:
        self.relay, self.failing = relay, failing or set()
        self.sent: list[int] = []
        self.confirmed: list[tuple[int, int]] = []  # (message id, mails the relay had accepted)

    def send(self, message_id, subject, at):  # type: ignore[no-untyped-def]
        self.sent.append(message_id)
        marks = self

        class Reply:
            def wait(self) -> None:
                marks.confirmed.append((message_id, len(marks.relay.accepted)))
                if message_id in marks.failing:
                    raise MarkUnavailable("the store went away")

        return Reply()

    def record(self, message_id, subject, at) -> None:  # type: ignore[no-untyped-def]
        self.send(message_id, subject, at).wait()

    def accepted(self, message_ids):  # type: ignore[no-untyped-def]
        return {}

    def forget(self, message_ids) -> None:  # type: ignore[no-untyped-def]
        pass


def test_each_mark_is_confirmed_after_its_mail_and_before_the_next_mails_body(  # type: ignore[no-untyped-def]
        faulty_runtime, session, clock, relay, monkeypatch) -> None:
    # Given a mark store whose writes are confirmed apart from being sent (as Redis marks are)
    marks = _RecordingMarks(relay)
    monkeypatch.setattr(batch_module, "_open_store", lambda runtime: marks)
    _, ids = _reminders(faulty_runtime, session, clock, customers=4)
    # When a batch of four is delivered
    outcomes = deliver_batch(faulty_runtime, ids)
    # Then the n-th mark was confirmed once the relay had the n-th mail and not the next one:
    # never more than one accepted mail without a durable mark
    assert [o for o, _ in outcomes.values()] == ["sent"] * 4
    assert sorted(marks.sent) == sorted(ids)
    assert [accepted for _, accepted in marks.confirmed] == [1, 2, 3, 4]
    assert _statuses(session) == {MessageStatus.sent}


def test_a_mark_whose_confirmation_fails_is_written_to_the_row_and_never_resent(  # type: ignore[no-untyped-def]
        faulty_runtime, session, clock, relay, monkeypatch) -> None:
    # Given three reminders and a mark store that loses the second mark's reply
    _, ids = _reminders(faulty_runtime, session, clock, customers=3)
    marks = _RecordingMarks(relay, failing={sorted(ids)[1]})
    monkeypatch.setattr(batch_module, "_open_store", lambda runtime: marks)
    # When the batch is delivered
    outcomes = deliver_batch(faulty_runtime, ids)
    # Then the second mail was marked in its row instead, the batch went on, and all arrived once
    assert [o for o, _ in outcomes.values()] == ["sent"] * 3
    assert sorted(relay.counts().values()) == [1, 1, 1]
    assert _statuses(session) == {MessageStatus.sent}


def test_redis_marks_are_confirmed_apart_from_being_sent(broker) -> None:  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    from plugin.storage.marks import RedisMarks

    client, namespace = getattr(broker, "client", None), getattr(broker, "namespace", None)
    if client is None or not namespace:
        pytest.skip("Redis marks need BROKER_URL=redis://…")
    marks = RedisMarks(client, f"{namespace}-marks")
    at = datetime(2026, 12, 2, 5, 0, tzinfo=UTC)
    # Given a mark sent, and another sent before anyone read the first one's reply
    marks.send(1, "first", at)
    pending = marks.send(2, "second\tsubject", at)
    # When the second is confirmed, and a third recorded in one go
    pending.wait()
    marks.record(3, "third", at)
    # Then every mark is there, read back with its time and subject, and forgotten on request
    assert marks.accepted([1, 2, 3, 4]) == {1: (at, "first"), 2: (at, "second subject"), 3: (at, "third")}
    marks.forget([1, 2, 3])
    assert marks.accepted([1, 2, 3]) == {}

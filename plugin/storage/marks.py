"""Cheap durable "accepted" marks: what the channel accepted, recorded before the next send and
checked at every claim, so the outbox row itself can be settled in bulk afterwards.

Two stores, both a single cheap write per mail that a SIGKILL of the worker cannot undo:
  JournalMarks  SQLite (one host by nature): a line appended to a file beside the database with
                one os.write — in the kernel's page cache the moment the call returns, no fsync.
  RedisMarks    when the broker is Redis: one SET per mail (one round trip), shared by every worker.
A mark outlives the batch that wrote it until the row is settled; a claim of an expired lease
finds it and settles the row as sent instead of sending again (`plugin.delivery.batch`).
What neither survives: a crash of the machine (journal) or a restart of a Redis without
persistence, each coinciding with the death of the worker before its bulk settle.
"""
from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Collection, Iterable
from datetime import datetime, timedelta
from typing import Any, Protocol

__all__ = ["AcceptedMarks", "JournalMarks", "RedisMarks", "MarkUnavailable", "Mark", "PendingMark"]

Mark = tuple[datetime, str]  # when the channel accepted it, and the mail's subject


class MarkUnavailable(Exception):
    """The store could not record a mark (the caller records it in the database instead)."""


class PendingMark(Protocol):
    def wait(self) -> None:
        """Return once the mark is durable; raises MarkUnavailable (then it may not be)."""


class _Done:
    """A mark that was durable the moment it was written."""

    def wait(self) -> None:
        return None


class AcceptedMarks(Protocol):
    def record(self, message_id: int, subject: str, at: datetime) -> None:
        """Durably note that the channel accepted `message_id`; raises MarkUnavailable."""

    def send(self, message_id: int, subject: str, at: datetime) -> PendingMark:
        """Start recording a mark without waiting for it: durable once `wait()` returns, which the
        caller does before the next transfer; raises MarkUnavailable."""

    def accepted(self, message_ids: Collection[int]) -> dict[int, Mark]:
        """The marks of these messages (those the channel accepted and no settle has forgotten)."""

    def forget(self, message_ids: Iterable[int]) -> None:
        """These rows are settled: their marks are no longer needed."""


def _line(message_id: int, subject: str, at: datetime) -> bytes:
    clean = subject.replace("\t", " ").replace("\n", " ").replace("\r", " ")[:500]
    return f"{message_id}\t{at.isoformat()}\t{clean}\n".encode()


def _parse(value: str) -> Mark:
    at, _, subject = value.partition("\t")
    return datetime.fromisoformat(at), subject


class JournalMarks:
    """An append-only file of marks beside a SQLite database, read back incrementally.

    Each line is written with one os.write on an O_APPEND descriptor: atomic against other writers,
    and a killed process cannot take back what the kernel has. Reading keeps the offset of the last
    whole line, so a check costs a stat and what was appended since."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        self._offset = 0
        self._marks: dict[int, Mark] = {}
        self._lock = threading.Lock()
        self._closer = weakref.finalize(self, os.close, self._fd)

    def record(self, message_id: int, subject: str, at: datetime) -> None:
        try:
            os.write(self._fd, _line(message_id, subject, at))
        except OSError as exc:  # a full disk, a closed descriptor
            raise MarkUnavailable(str(exc)) from exc

    def send(self, message_id: int, subject: str, at: datetime) -> PendingMark:
        self.record(message_id, subject, at)  # in the kernel's hands already: nothing to wait for
        return _Done()

    def accepted(self, message_ids: Collection[int]) -> dict[int, Mark]:
        with self._lock:
            self._read()
            return {i: self._marks[i] for i in message_ids if i in self._marks}

    def forget(self, message_ids: Iterable[int]) -> None:
        with self._lock:
            self._read()  # first: a line not read yet would otherwise be remembered for good
            for message_id in message_ids:
                self._marks.pop(message_id, None)

    def everything(self) -> dict[int, Mark]:
        """Every mark not forgotten (what a restarted process settles before it truncates)."""
        with self._lock:
            self._read()
            return dict(self._marks)

    def truncate(self) -> None:
        """Empty the journal; only for a process that is the database's one deliverer, once the
        rows of `everything()` are settled."""
        with self._lock:
            os.ftruncate(self._fd, 0)
            self._offset = 0
            self._marks.clear()

    def close(self) -> None:
        self._closer()

    def _read(self) -> None:
        size = os.fstat(self._fd).st_size
        if size < self._offset:  # truncated by another reader of this file
            self._offset, self._marks = 0, {}
        if size == self._offset:
            return
        chunk = os.pread(self._fd, size - self._offset, self._offset)
        whole = chunk.rfind(b"\n") + 1  # a line still being appended is read next time
        for raw in chunk[:whole].decode(errors="replace").splitlines():
            message_id, _, value = raw.partition("\t")
            try:
                self._marks[int(message_id)] = _parse(value)
            except ValueError:
                continue
        self._offset += whole


class RedisMarks:
    """One key per accepted message in the broker's Redis, `<namespace>:accepted:<id>`, kept until
    its row is settled (and at most TTL, against marks whose forget was lost).

    `send` writes the SET and returns; `wait()` reads its reply. Delivery sends the mark the moment
    a mail is accepted and waits for it just before the next mail's body goes out, so the round
    trip overlaps the next mail's MIME build and SMTP envelope instead of adding one to every mail
    (on a loaded machine each round trip costs a wake-up of Redis and one of the worker thread).
    Each thread writes its marks on a connection of its own, kept between marks: no pool checkout
    (and its readiness poll) per mail."""

    TTL = timedelta(days=7)

    def __init__(self, client: Any, namespace: str) -> None:
        self.client, self.prefix = client, f"{namespace}:accepted:"
        self._key_prefix = self.prefix.encode()
        ttl = str(int(self.TTL.total_seconds())).encode()
        self._expiry = b"$2\r\nEX\r\n$%d\r\n%s\r\n" % (len(ttl), ttl)
        self._local = threading.local()

    def record(self, message_id: int, subject: str, at: datetime) -> None:
        self.send(message_id, subject, at).wait()

    def send(self, message_id: int, subject: str, at: datetime) -> PendingMark:
        from redis.exceptions import RedisError

        local = self._local.__dict__
        if local.get("pending") is not None:  # a reply nobody read: its connection is out of step
            self._drop()
        key = b"%s%d" % (self._key_prefix, message_id)
        value = _line(message_id, subject, at).split(b"\t", 1)[1].rstrip(b"\n")
        try:
            connection = local.get("connection") or self._connect()
            # The command in RESP, written straight to the socket: redis-py's packing, encoding and
            # health check cost more CPU than the round trip's system calls. This connection is this
            # thread's alone and carries nothing but these SETs, one reply outstanding at a time.
            connection._sock.sendall(b"*5\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n%s"
                                     % (len(key), key, len(value), value, self._expiry))
        except (RedisError, OSError, AttributeError) as exc:  # AttributeError: no socket (closed meanwhile)
            self._drop()
            raise MarkUnavailable(str(exc)) from exc
        reply = local["pending"] = _RedisReply(self, connection)
        return reply

    def accepted(self, message_ids: Collection[int]) -> dict[int, Mark]:
        ids = list(message_ids)
        if not ids:
            return {}
        values = self.client.mget([f"{self.prefix}{i}" for i in ids])
        return {i: _parse(v.decode(errors="replace")) for i, v in zip(ids, values, strict=True) if v is not None}

    def forget(self, message_ids: Iterable[int]) -> None:
        from redis.exceptions import RedisError

        keys = [f"{self.prefix}{i}" for i in message_ids]
        if keys:
            try:
                self.client.delete(*keys)
            except RedisError:  # the TTL takes them instead
                pass

    def _connect(self) -> Any:
        """This thread's marks connection, taken from the client's pool once and kept (connected:
        authenticated and on the client's database)."""
        connection = self.client.connection_pool.get_connection()
        if getattr(connection, "_sock", None) is None:
            connection.connect()
        self._local.connection = connection
        return connection

    def _read(self, reply: _RedisReply) -> bytes:
        """The reply line to one SET ("+OK"), read straight from the socket like the command went."""
        local = self._local.__dict__
        if local.get("pending") is reply:
            local["pending"] = None
        try:
            sock, line = reply.connection._sock, b""
            while not line.endswith(b"\r\n"):
                chunk = sock.recv(256)
                if not chunk:
                    raise ConnectionError("Redis closed the connection")
                line += chunk
            if line != b"+OK\r\n":  # an error reply (or more than one reply): start afresh next time
                raise MarkUnavailable(f"SET answered {line[:200]!r}")
            return line
        except BaseException:
            if local.get("connection") is reply.connection:
                self._drop()
            raise

    def _drop(self) -> None:
        local = self._local.__dict__
        connection, local["connection"], local["pending"] = local.get("connection"), None, None
        if connection is not None:
            connection.disconnect()
            self.client.connection_pool.release(connection)


class _RedisReply:
    """The reply to one SET still on its way; `wait` reads it (on the thread that sent it)."""

    def __init__(self, marks: RedisMarks, connection: Any) -> None:
        self.marks, self.connection, self.read = marks, connection, False

    def wait(self) -> None:
        if self.read:
            return
        self.read = True
        try:
            self.marks._read(self)
        except (OSError, AttributeError) as exc:  # ConnectionError, a timeout; no socket
            raise MarkUnavailable(str(exc)) from exc

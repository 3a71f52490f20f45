"""A batch's lease heartbeat: while its worker lives, the leases of the messages it still holds are
renewed every RENEW_EVERY, so they can be short (outbox.LEASE) and a dead worker's are soon free."""
from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from datetime import datetime, timedelta
from types import TracebackType

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from plugin.clock import Clock
from plugin.storage import outbox

__all__ = ["LeaseHeartbeat", "MARGIN"]

log = logging.getLogger("okaeri.outbox")
MARGIN = timedelta(seconds=3)  # stop sending this long before the lease could run out (after renewals failed for LEASE - MARGIN)


class LeaseHeartbeat:
    """Keeps a batch's claims alive from a thread of its own; `held()` says whether they surely
    still are (a renewal that failed for a whole lease means another worker may have them)."""

    def __init__(self, engine: Engine, clock: Clock, message_ids: Iterable[int], until: datetime,
                 every: timedelta | None = None) -> None:
        self.engine, self.clock, self.every = engine, clock, every or outbox.RENEW_EVERY
        self.until = until
        self._ids = set(message_ids)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="okaeri-lease-heartbeat", daemon=True)

    def __enter__(self) -> LeaseHeartbeat:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self._stopping.set()  # not joined: a renewal under way touches only rows still `sending`

    def held(self) -> bool:
        """True while the batch's leases are certain to be its own."""
        return self.clock.now() < self.until - MARGIN

    def release(self, message_id: int) -> None:
        """This message is settled: stop renewing it."""
        with self._lock:
            self._ids.discard(message_id)

    def _beat(self) -> None:
        while not self._stopping.wait(self.every.total_seconds()):
            with self._lock:
                ids = list(self._ids)
            if not ids:
                return
            started = self.clock.now()
            try:
                with self.engine.connect() as connection:
                    outbox.renew_leases(connection, ids, started + outbox.LEASE)
                self.until = started + outbox.LEASE
            except DBAPIError:  # the database is away: try again next beat; held() turns False in time
                log.warning("okaeri.outbox.lease-renewal-failed", extra={"messages": len(ids)})

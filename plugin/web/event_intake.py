"""Group commit of storefront events: the event endpoint hands each parsed event to one writer,
which stores whatever has arrived meanwhile in one transaction and then answers every request of
the batch. An event is answered only after its transaction committed, so a 202 is never lost; a
burst costs one commit per batch instead of one per event, and on SQLite no two requests ever
wait on each other's write lock.

A batch that fails is rolled back and retried one event per transaction, so a bad event fails
alone. The writer is one thread per event loop (one per web process); its batches grow with the
load (everything queued while the previous batch was written, up to MAX_BATCH).
"""
from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from sqlalchemy import select
from sqlmodel import Session, col

from connectors.storefront import StorefrontEvent
from plugin.measurement.links import read_visitor_proof
from plugin.measurement.thanks_page import record_thanks_page
from plugin.runtime import Runtime
from plugin.storage.models import InstallState, Shop
from plugin.sync.storefront_events import record_events

__all__ = ["EventIntake", "Received", "UNKNOWN_SHOP", "MAX_BATCH"]

log = logging.getLogger("okaeri.storefront")

MAX_BATCH = 500
UNKNOWN_SHOP = "unknown shop key"


@dataclass(frozen=True)
class Received:
    """One parsed event for the shop whose public key it was posted to."""

    platform: str
    event_key: str
    event: StorefrontEvent


@dataclass
class _Queue:
    pending: list[tuple[Received, asyncio.Future[str]]]
    draining: bool = False


class EventIntake:
    """Stores storefront events in batches; `await submit(received)` returns its outcome."""

    def __init__(self, runtime: Runtime, max_batch: int = MAX_BATCH) -> None:
        self.runtime = runtime
        self.max_batch = max_batch
        self._queues: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Queue] = weakref.WeakKeyDictionary()
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="okaeri-events")

    async def submit(self, received: Received) -> str:
        """Queue one event; return what storing it did (UNKNOWN_SHOP if the key names no live shop)."""
        loop = asyncio.get_running_loop()
        queue = self._queues.get(loop)
        if queue is None:
            queue = self._queues[loop] = _Queue([])
        future: asyncio.Future[str] = loop.create_future()
        queue.pending.append((received, future))
        if not queue.draining:
            queue.draining = True
            loop.create_task(self._drain(loop, queue))
        return await future

    async def _drain(self, loop: asyncio.AbstractEventLoop, queue: _Queue) -> None:
        try:
            while queue.pending:
                batch, queue.pending = queue.pending[:self.max_batch], queue.pending[self.max_batch:]
                try:
                    outcomes = await loop.run_in_executor(self._writer, self._store_batch, [r for r, _ in batch])
                except Exception as exc:  # noqa: BLE001 - each request answers with its own failure
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_, future), outcome in zip(batch, outcomes, strict=True):
                    if not future.done():
                        if isinstance(outcome, BaseException):
                            future.set_exception(outcome)
                        else:
                            future.set_result(outcome)
        finally:
            queue.draining = False

    def _store_batch(self, batch: Sequence[Received]) -> list[str | BaseException]:
        try:
            with self.runtime.sessions() as session:
                outcomes: list[str | BaseException] = list(store(session, self.runtime, batch))
                session.commit()
                return outcomes
        except Exception:  # noqa: BLE001 - find the bad event: one transaction each
            if len(batch) == 1:
                raise
            log.warning("okaeri.storefront.batch-retried-singly", extra={"events": len(batch)})
            return [self._store_one(received) for received in batch]

    def _store_one(self, received: Received) -> str | BaseException:
        try:
            with self.runtime.sessions() as session:
                outcome = store(session, self.runtime, [received])[0]
                session.commit()
                return outcome
        except Exception as exc:  # noqa: BLE001 - this request answers with it
            return exc

    def close(self) -> None:
        self._writer.shutdown(wait=True)


def store(session: Session, runtime: Runtime, batch: Sequence[Received]) -> list[str]:
    """Store a batch of events in the session's transaction (not committed); each event's outcome."""
    keys = sorted({(r.platform, r.event_key) for r in batch if r.event_key})
    shops: dict[tuple[str, str], Shop] = {}
    if keys:
        for shop in session.execute(select(Shop).where(col(Shop.event_key).in_([k for _, k in keys]))).scalars():
            if shop.state == InstallState.active and shop.storefront_enabled and (shop.platform, shop.event_key) in keys:
                shops[(shop.platform, shop.event_key)] = shop
    now = runtime.clock.now()
    outcomes: list[str] = [UNKNOWN_SHOP] * len(batch)
    by_shop: dict[tuple[str, str], list[int]] = {}
    for position, received in enumerate(batch):
        if (received.platform, received.event_key) in shops:
            by_shop.setdefault((received.platform, received.event_key), []).append(position)
    for key, positions in by_shop.items():
        shop = shops[key]
        platform = runtime.platforms.get(shop.platform)
        events: list[tuple[StorefrontEvent, int | None]] = []
        for position in positions:
            event = batch[position].event
            events.append((event, read_visitor_proof(runtime, event.proof, shop.id or 0, now) if event.proof else None))
        # Purchases (the thanks page) have their own path; the rest keep their order in one call.
        others = [i for i, (event, _) in enumerate(events) if event.kind != "purchase"]
        recorded = record_events(session, shop, [events[i] for i in others], now, cart_url=platform.cart_url(shop.domain))
        for i, outcome in zip(others, recorded, strict=True):
            outcomes[positions[i]] = outcome
        for i, (event, proven) in enumerate(events):
            if event.kind == "purchase":
                outcomes[positions[i]] = record_thanks_page(session, shop, event.order_id, event.visitor_id, proven, now)
    return outcomes

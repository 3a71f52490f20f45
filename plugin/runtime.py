"""Everything a process needs, built once from Settings: storage, broker, channels, clock and keys."""
from __future__ import annotations

import gc
from collections.abc import Mapping
from dataclasses import dataclass, field

import dramatiq
from sqlalchemy import Engine
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session

from plugin.channels.base import Channel
from plugin.channels.registry import build_channels
from plugin.clock import Clock, SystemClock
from plugin.crypto import Signer, TokenCipher
from plugin.jobs.broker import build_broker
from plugin.platforms import Platforms, load_platforms
from plugin.settings import Settings
from plugin.storage.db import make_engine, make_session_factory
from plugin.tasks import Tasks

__all__ = ["Runtime", "build_runtime", "settle_heap"]


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    broker: dramatiq.Broker
    clock: Clock
    cipher: TokenCipher
    signer: Signer
    channels: dict[str, Channel]  # by Message.channel
    platforms: Platforms
    tasks: Tasks = field(init=False)  # enqueues work on `broker`; the actors live in the processes that consume it

    def __post_init__(self) -> None:
        self.tasks = Tasks(self.broker)
        for channel in self.channels.values():  # channels with state of their own (accounts, retry keys)
            channel.attach(self.engine, self.cipher, self.clock)

    def close_channels(self) -> None:
        """Release the channels' pooled connections (SMTP, …)."""
        for channel in self.channels.values():
            channel.close()

    def close(self) -> None:
        """Release pooled connections (database, channels, broker)."""
        self.close_channels()
        self.broker.close()
        self.engine.dispose()


def build_runtime(
    settings: Settings,
    *,
    clock: Clock | None = None,
    broker: dramatiq.Broker | None = None,
    engine: Engine | None = None,
    channels: Mapping[str, Channel] | None = None,
) -> Runtime:
    """Wire one runtime; the secret key must already be set (see ensure_secret_key). `channels` adds
    channels beside the registered ones (a test's, say)."""
    engine = engine or make_engine(settings.effective_database_url)
    return Runtime(
        settings=settings,
        engine=engine,
        sessions=make_session_factory(engine),
        broker=broker or build_broker(settings.broker_url, namespace=settings.redis_namespace),
        clock=clock or SystemClock(),
        cipher=TokenCipher(settings.secret_key, settings.previous_secret_key_list),
        signer=Signer(settings.secret_key, settings.previous_secret_key_list),
        channels=build_channels(settings, channels),
        platforms=load_platforms({**settings.platform_settings, "OKAERI_RATE_LIMIT_STORE": settings.rate_limit_store,
                                  "OKAERI_REDIS_NAMESPACE": settings.redis_namespace}),
    )


def settle_heap() -> None:
    """Once a process is built (its runtime, app or worker): collect, then move everything alive
    into the collector's permanent generation (`gc.freeze`). The modules, models and compiled SQL
    of a process are never garbage, but every full collection walked them: a storefront beacon
    that met one waited ~100 ms (events p99 132 → 29 ms with this, bench/RESULTS.md, issue 18),
    and a delivery thread paid the same walk in CPU."""
    gc.collect()
    gc.freeze()

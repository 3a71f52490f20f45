"""Everything a process needs, built once from Settings: storage, broker, actors, channels."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

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

if TYPE_CHECKING:
    from plugin.jobs.actors import Actors

__all__ = ["Runtime", "build_runtime"]


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
    actors: Actors = field(init=False)

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
    from plugin.jobs.actors import register_actors

    engine = engine or make_engine(settings.effective_database_url)
    runtime = Runtime(
        settings=settings,
        engine=engine,
        sessions=make_session_factory(engine),
        broker=broker or build_broker(settings.broker_url, namespace=settings.redis_namespace),
        clock=clock or SystemClock(),
        cipher=TokenCipher(settings.secret_key),
        signer=Signer(settings.secret_key),
        channels=build_channels(settings, channels),
        platforms=load_platforms(settings.platform_settings),
    )
    runtime.actors = register_actors(runtime)
    return runtime

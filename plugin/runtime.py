"""Everything a process needs, built once from Settings: storage, broker, channels, clock and keys."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import dramatiq
from sqlalchemy import Engine
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session

from plugin.clock import Clock, SystemClock
from plugin.crypto import Signer, TokenCipher
from plugin.jobs.broker import build_broker
from plugin.settings import Settings
from plugin.storage.db import make_engine, make_session_factory
from plugin.tasks import Tasks

if TYPE_CHECKING:
    from plugin.channels.email import EmailChannel

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
    email: EmailChannel
    tasks: Tasks = field(init=False)  # enqueues work on `broker`; the actors live in the processes that consume it

    def __post_init__(self) -> None:
        self.tasks = Tasks(self.broker)

    def close(self) -> None:
        """Release pooled connections (database, SMTP, broker)."""
        self.email.close()
        self.broker.close()
        self.engine.dispose()


def build_runtime(
    settings: Settings,
    *,
    clock: Clock | None = None,
    broker: dramatiq.Broker | None = None,
    engine: Engine | None = None,
) -> Runtime:
    """Wire one runtime; the secret key must already be set (see ensure_secret_key)."""
    from plugin.channels.email import EmailChannel, SmtpConfig

    engine = engine or make_engine(settings.effective_database_url)
    return Runtime(
        settings=settings,
        engine=engine,
        sessions=make_session_factory(engine),
        broker=broker or build_broker(settings.broker_url, namespace=settings.redis_namespace),
        clock=clock or SystemClock(),
        cipher=TokenCipher(settings.secret_key),
        signer=Signer(settings.secret_key),
        email=EmailChannel(SmtpConfig.from_settings(settings), pool_size=settings.worker_threads),
    )

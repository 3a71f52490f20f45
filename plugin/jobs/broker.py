"""The one broker factory: BROKER_URL → Dramatiq broker (in-process, Redis or RabbitMQ)."""
from __future__ import annotations

import dramatiq
from dramatiq.brokers.stub import StubBroker

__all__ = ["build_broker", "is_in_process", "REDIS_HEARTBEAT_TIMEOUT_MS", "REDIS_MAINTENANCE_CHANCE"]

# Dramatiq's Redis broker gives a dead worker's fetched-but-unacked messages (its prefetch and its
# delayed ones) back to their queues in a "maintenance" pass, which a command runs with this chance
# per million, once the worker's heartbeat (every command it sends; idle consumers poll several
# times a second) is this old. Dramatiq's defaults (60 s, 1 in 1,000) left a killed worker's
# hand-offs waiting 2-4 minutes; these bring them back within ~20 s. A living worker is never
# taken for dead: its idle queues' consumers keep polling even while every thread is busy.
REDIS_HEARTBEAT_TIMEOUT_MS = 15_000
REDIS_MAINTENANCE_CHANCE = 10_000


def build_broker(url: str, *, namespace: str = "okaeri") -> dramatiq.Broker:
    """memory:// is an in-process queue whose worker threads live in the same process."""
    scheme = url.split(":", 1)[0]
    if scheme == "memory":
        broker: dramatiq.Broker = StubBroker(fail_fast_default=False)
    elif scheme in ("redis", "rediss"):
        from dramatiq.brokers.redis import RedisBroker

        broker = RedisBroker(url=url, namespace=namespace, heartbeat_timeout=REDIS_HEARTBEAT_TIMEOUT_MS,
                             maintenance_chance=REDIS_MAINTENANCE_CHANCE)
    elif scheme in ("amqp", "amqps"):
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        broker = RabbitmqBroker(url=url, confirm_delivery=True)
    else:
        raise ValueError(f"BROKER_URL: unsupported scheme {scheme!r}")
    return broker


def is_in_process(broker: dramatiq.Broker) -> bool:
    return isinstance(broker, StubBroker)

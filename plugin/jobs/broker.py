"""The one broker factory: BROKER_URL → Dramatiq broker (in-process, Redis or RabbitMQ)."""
from __future__ import annotations

import dramatiq
from dramatiq.brokers.stub import StubBroker

__all__ = ["build_broker", "is_in_process"]


def build_broker(url: str, *, namespace: str = "okaeri") -> dramatiq.Broker:
    """memory:// is an in-process queue whose worker threads live in the same process."""
    scheme = url.split(":", 1)[0]
    if scheme == "memory":
        broker: dramatiq.Broker = StubBroker(fail_fast_default=False)
    elif scheme in ("redis", "rediss"):
        from dramatiq.brokers.redis import RedisBroker

        broker = RedisBroker(url=url, namespace=namespace)
    elif scheme in ("amqp", "amqps"):
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        broker = RabbitmqBroker(url=url, confirm_delivery=True)
    else:
        raise ValueError(f"BROKER_URL: unsupported scheme {scheme!r}")
    return broker


def is_in_process(broker: dramatiq.Broker) -> bool:
    return isinstance(broker, StubBroker)

"""The one broker factory: BROKER_URL → Dramatiq broker (in-process, Redis or RabbitMQ)."""
from __future__ import annotations

import time

import dramatiq
from dramatiq.brokers.stub import StubBroker

__all__ = ["build_broker", "is_in_process", "requeue_from_dead_workers"]


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


# Dramatiq's own maintenance pass (dramatiq/brokers/redis/dispatch.lua), with one difference: a
# dead worker's fetched-but-unacked messages go back to the HEAD of their queue, not its tail.
# Dramatiq runs that pass by chance (1 command in 1,000) once a worker's heartbeat is 60 s old,
# and appends: behind a backlog of 100,000 queued mails, what a killed worker had prefetched or
# was delivering waited minutes. Run on a schedule by the scheduler's heartbeat instead.
_REQUEUE_FIRST = """
local namespace, deadline = KEYS[1], ARGV[1]
local moved = 0
local dead_workers = redis.call("zrangebyscore", namespace .. ":__heartbeats__", 0, deadline)
for _, worker in ipairs(dead_workers) do
    for i = 2, #ARGV do
        local queue = namespace .. ":" .. ARGV[i]
        local acks = namespace .. ":__acks__." .. worker .. "." .. ARGV[i]
        for _, message_id in ipairs(redis.call("smembers", acks)) do
            if redis.call("hexists", queue .. ".msgs", message_id) > 0 then
                redis.call("lpush", queue, message_id)
                moved = moved + 1
            end
        end
        redis.call("del", acks)
    end
end
return moved
"""


def requeue_from_dead_workers(broker: dramatiq.Broker, queue_names: list[str], dead_for: float) -> int:
    """Put the unacked messages of Redis workers silent for `dead_for` seconds back at the head of
    these queues (and their delay queues); how many. A no-op on other brokers (RabbitMQ gives a
    dead consumer's messages back by itself, the in-process queue dies with its process)."""
    from dramatiq.brokers.redis import RedisBroker

    if not isinstance(broker, RedisBroker):
        return 0
    names = [name for queue in queue_names for name in (queue, f"{queue}.DQ")]
    deadline = int((time.time() - dead_for) * 1000)  # heartbeats are wall-clock milliseconds
    script = broker.client.register_script(_REQUEUE_FIRST)
    return int(script(keys=[broker.namespace], args=[deadline, *names]))

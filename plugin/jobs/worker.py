"""Start and stop Dramatiq worker threads for a runtime's broker."""
from __future__ import annotations

import logging

import dramatiq

from plugin.delivery.batch import settle_journaled
from plugin.jobs.actors import register_actors
from plugin.jobs.broker import is_in_process
from plugin.jobs.exposition import install_actor_metrics
from plugin.jobs.work import hand_over_queued
from plugin.runtime import Runtime

__all__ = ["start_worker"]

log = logging.getLogger("okaeri.worker")


def start_worker(runtime: Runtime, threads: int | None = None) -> dramatiq.Worker:
    """Declare the actors and consume every queue of the runtime's broker in this process; call .stop() to end.

    With the in-process broker the queue starts empty: what a previous run of this process sent
    and journaled is settled, and whatever it had handed to its queue (and did not deliver before
    it died) is handed over again before work starts.
    """
    install_actor_metrics(runtime.broker)
    register_actors(runtime)
    if is_in_process(runtime.broker) and not _anything_queued(runtime.broker):
        settled = settle_journaled(runtime)  # what the last run sent and marked, and could not settle
        if settled:
            log.info("okaeri.worker.settled-from-journal", extra={"messages": settled})
        handed = hand_over_queued(runtime)
        if handed:
            log.info("okaeri.worker.requeued", extra={"messages": handed})
    worker = dramatiq.Worker(runtime.broker, worker_threads=threads or runtime.settings.worker_threads,
                             worker_timeout=200)
    worker.start()
    return worker


def _anything_queued(broker: dramatiq.Broker) -> bool:
    """The in-process broker's queues (and their delay queues) hold any message."""
    return any(q.qsize() for q in getattr(broker, "queues", {}).values())

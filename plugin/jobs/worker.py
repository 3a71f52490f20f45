"""Start and stop Dramatiq worker threads for a runtime's broker."""
from __future__ import annotations

import dramatiq

from plugin.jobs.actors import register_actors
from plugin.runtime import Runtime

__all__ = ["start_worker"]


def start_worker(runtime: Runtime, threads: int | None = None) -> dramatiq.Worker:
    """Declare the actors and consume every queue of the runtime's broker in this process; call .stop() to end."""
    register_actors(runtime)
    worker = dramatiq.Worker(runtime.broker, worker_threads=threads or runtime.settings.worker_threads,
                             worker_timeout=200)
    worker.start()
    return worker

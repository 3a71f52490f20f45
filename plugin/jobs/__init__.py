"""Background work: the broker, the Dramatiq actors, worker threads and the scheduler that enqueues periodic ticks."""

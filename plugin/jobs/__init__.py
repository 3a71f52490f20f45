"""Background work: the broker, the Dramatiq actors and what they run, worker threads, the scheduler."""

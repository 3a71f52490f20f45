"""The web process: FastAPI app, request dependencies, page templates and routes (they parse and authorise; services do the work)."""

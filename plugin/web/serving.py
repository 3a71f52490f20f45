"""The web app as each of several web processes builds it (`okaeri serve --workers N`): uvicorn
imports this factory in every worker process, which reads the settings from the environment and
builds its own runtime (engine, broker connection, event writer)."""
from __future__ import annotations

import logging

from fastapi import FastAPI

from plugin.logs import configure_logging
from plugin.runtime import build_runtime, settle_heap
from plugin.settings import load_settings
from plugin.web.app import create_app

__all__ = ["app_from_environment", "FACTORY"]

FACTORY = "plugin.web.serving:app_from_environment"


def app_from_environment() -> FastAPI:
    """One web process's app, from the same environment `okaeri serve` was started with (its logs
    as OKAERI_LOG_LEVEL and OKAERI_LOG_FORMAT say)."""
    settings = load_settings()
    configure_logging(logging.getLevelName(settings.log_level), settings.log_format)
    app = create_app(build_runtime(settings))
    settle_heap()
    return app


"""The web app as each of several web processes builds it (`okaeri serve --workers N`): uvicorn
imports this factory in every worker process, which reads the settings from the environment and
builds its own runtime (engine, broker connection, event writer)."""
from __future__ import annotations

import gc
import logging

from fastapi import FastAPI

from plugin.logs import configure_logging
from plugin.runtime import build_runtime
from plugin.settings import load_settings
from plugin.web.app import create_app

__all__ = ["app_from_environment", "FACTORY", "settle_heap"]

FACTORY = "plugin.web.serving:app_from_environment"


def app_from_environment() -> FastAPI:
    """One web process's app, from the same environment `okaeri serve` was started with (its logs
    as OKAERI_LOG_LEVEL and OKAERI_LOG_FORMAT say)."""
    settings = load_settings()
    configure_logging(logging.getLevelName(settings.log_level), settings.log_format)
    app = create_app(build_runtime(settings))
    settle_heap()
    return app


def settle_heap() -> None:
    """Once the app is built: collect, then move everything alive into the collector's permanent
    generation (`gc.freeze`). The modules, models and compiled SQL of a web process are never
    garbage, but every full collection walked them: a storefront beacon that met one waited
    ~100 ms (events p99 132 → 29 ms with this, bench/RESULTS.md, issue 18)."""
    gc.collect()
    gc.freeze()

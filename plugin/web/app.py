"""The FastAPI application: routes, the rate limits of its public endpoints, and one error handler
that maps every refusal to a clear 4xx (plugin.web.errors)."""
from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.routing import Mount

from connectors.signatures import same_secret
from plugin.jobs.exposition import CONTENT_TYPE, metrics_page
from plugin.jobs.health import is_ready, readiness, readiness_body
from plugin.runtime import Runtime
from plugin.web.embedding import EmbeddedAnswers
from plugin.web.errors import install_error_handlers
from plugin.web.event_intake import EventIntake
from plugin.web.ratelimit import RateLimits
from plugin.web.routes import (
    console,
    customers,
    dashboard,
    data_requests,
    install,
    links,
    point_fields,
    rules,
    scenario_page,
    storefront,
    webhooks,
)
from plugin.web.routes import line as line_routes
from plugin.web.routes import mail_reports as mail_report_routes
from plugin.web.routes import surveys as survey_routes

__all__ = ["create_app", "SCHEMA_URL"]

SCHEMA_URL = "/openapi.json"


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """At shutdown: the rate limits' Redis connections are closed, not left for the process's exit."""
    yield
    await app.state.rate_limits.aclose()


def create_app(runtime: Runtime, *, expose_schema: bool = False) -> FastAPI:
    """The web app. `expose_schema` publishes the OpenAPI map at SCHEMA_URL, sandbox and demo routes
    included, for the fuzz pass in tests; it is never on in a running server (no public map of the API)."""
    app = FastAPI(title="Okaeri", docs_url=None, redoc_url=None, openapi_url=SCHEMA_URL if expose_schema else None,
                  lifespan=_lifespan)
    app.state.runtime = runtime
    app.state.rate_limits = RateLimits(runtime.settings)
    app.state.event_intake = EventIntake(runtime)
    for module in (install, storefront, console, dashboard, scenario_page, rules, customers, links):
        app.include_router(module.router)
    app.include_router(survey_routes.router)
    app.include_router(mail_report_routes.router)
    app.include_router(line_routes.router)
    for extra in (webhooks, data_requests, point_fields):  # platform webhooks; data exports; point fields
        app.include_router(extra.router)
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")  # console CSS, Chart.js
    install_error_handlers(app)
    app.add_middleware(EmbeddedAnswers)  # inside a platform's admin frame (plugin.web.embedding)
    if expose_schema:
        app.openapi = lambda: _schema_with_mounts(app)  # type: ignore[method-assign]

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        """The process is up (it answers); says nothing of the database or the broker."""
        return {"status": "ok"}

    @app.get("/metrics", include_in_schema=False)
    def metrics(request: Request) -> Response:
        """Prometheus metrics; behind OKAERI_METRICS_TOKEN (a bearer token) when one is set."""
        token = runtime.settings.metrics_token
        if token and not same_secret(request.headers.get("authorization", ""), f"Bearer {token}"):
            return Response("metrics need the bearer token (OKAERI_METRICS_TOKEN)\n", 401, media_type="text/plain")
        return Response(metrics_page(runtime), media_type=CONTENT_TYPE)

    @app.get("/readyz", include_in_schema=False)  # 503 is its answer when a part is down, not an error
    def readyz() -> JSONResponse:
        """Database reachable, migrations at head, broker reachable; 503 naming the failing part."""
        checks = readiness(runtime.engine, runtime.broker)
        return JSONResponse(readiness_body(checks), status_code=200 if is_ready(checks) else 503)

    return app


def _schema_with_mounts(app: FastAPI) -> dict[str, Any]:
    """The app's OpenAPI map with the paths of the FastAPI apps mounted on it (the demo's sandbox shop)."""
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, routes=app.routes)
        for route in app.routes:
            if isinstance(route, Mount) and isinstance(route.app, FastAPI):
                mounted = get_openapi(title=route.app.title, version=route.app.version, routes=route.app.routes)
                schema.setdefault("paths", {}).update({route.path + path: item for path, item in mounted["paths"].items()})
                schemas = schema.setdefault("components", {}).setdefault("schemas", {})
                schemas.update(mounted.get("components", {}).get("schemas", {}))
        app.openapi_schema = schema
    return app.openapi_schema

"""The FastAPI application: routes plus one handler that maps errors to clear 4xx answers."""
from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from connectors.errors import BadResponse, BadSignature, ConnectorError
from plugin.runtime import Runtime
from plugin.web.routes import console, install, links, storefront

__all__ = ["create_app"]


def create_app(runtime: Runtime) -> FastAPI:
    app = FastAPI(title="Okaeri", docs_url=None, redoc_url=None, openapi_url=None)  # no public map of the API
    app.state.runtime = runtime
    for module in (install, storefront, console, links):
        app.include_router(module.router)
    # The decorator form, called directly: it takes handlers of the narrower exception type.
    app.exception_handler(ConnectorError)(_connector_error)
    app.exception_handler(RequestValidationError)(_validation_error)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


async def _connector_error(request: Request, exc: ConnectorError) -> JSONResponse:
    if isinstance(exc, BadSignature):
        return JSONResponse({"error": "invalid signature"}, 401)  # platform reviews require 401
    status = 400 if isinstance(exc, BadResponse) else 502
    return JSONResponse({"error": str(exc)}, status)


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
    where = ".".join(str(p) for p in first.get("loc", ()))
    return JSONResponse({"error": f"{where}: {first.get('msg')}"}, 422)

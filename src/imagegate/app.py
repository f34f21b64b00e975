"""create_app(settings): wiring and lifespan only."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from imagegate import __version__
from imagegate.billing.router import router as billing_router
from imagegate.billing.stripe_webhook import router as stripe_webhook_router
from imagegate.callbacks.router import router as callbacks_router
from imagegate.catalog.router import router as catalog_router
from imagegate.clock import Clock
from imagegate.config import Settings
from imagegate.console.router import PREFIX as CONSOLE
from imagegate.console.router import console_error, install_console
from imagegate.db.migrate import upgrade
from imagegate.health import router as health_router
from imagegate.http_docs import finished
from imagegate.http_edge import RequestEdge
from imagegate.http_errors import install_error_handlers
from imagegate.http_hot import HotRoutes
from imagegate.logs import redact_access_log
from imagegate.metrics.exposition import metrics_port
from imagegate.metrics.exposition import router as metrics_router
from imagegate.openai_api.errors import openai_error
from imagegate.openai_api.router import PREFIX as OPENAI
from imagegate.openai_api.router import router as openai_router
from imagegate.providers.base import Provider
from imagegate.services import build_services
from imagegate.storage.router import router as images_router
from imagegate.tasks.router import openapi_components
from imagegate.tasks.router import router as tasks_router

# uvicorn options every server of ours runs with. proxy_headers off: X-Forwarded-For is believed
# only from IMAGEGATE_TRUSTED_PROXIES (keys/network.py), never from whoever sends it.
SERVER_OPTIONS: dict[str, Any] = {
    "loop": "uvloop",
    "http": "httptools",
    "proxy_headers": False,
    "server_header": False,
}


def app_options() -> dict[str, Any]:
    """FastAPI's options that imagegate and the benchmark's bare app share: its native
    OpenTelemetry hooks only where OpenTelemetry is configured (an OTEL_* variable at start).
    Unconfigured, FastAPI looks for a tracer provider in the environment on every request,
    about a tenth of a create's CPU; imagegate's own metrics are Prometheus's (metrics/)."""
    if any(name.startswith("OTEL_") for name in os.environ):
        return {}
    return {"telemetry": {"tracing": False, "metrics": False, "logs": False}}


def create_app(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    providers: dict[str, Provider] | None = None,
    run_worker: bool = True,
    migrate: bool = True,
) -> FastAPI:
    """The ASGI app. Its lifespan migrates the database and runs an in-process worker."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        redact_access_log()  # after the server set up its logging
        if migrate:
            await asyncio.to_thread(upgrade, settings.resolved_database_url)
        services = build_services(settings, clock, providers)
        app.state.services = services
        services.key_usage.start()
        if run_worker:
            await services.start_workers()
        try:
            async with metrics_port(services):
                yield
        finally:
            await services.close()

    app = FastAPI(
        title="imagegate",
        version=__version__,
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
        redirect_slashes=False,  # a trailing slash gets the error envelope, not an empty 307
        **app_options(),
    )
    install_error_handlers(app, html={CONSOLE: console_error}, shapes={OPENAI: openai_error})
    app.add_middleware(HotRoutes)  # the innermost: polled GETs skip FastAPI's routing
    app.add_middleware(RequestEdge)  # ids, metrics, rate-limit headers: every request
    app.include_router(tasks_router)
    app.include_router(billing_router)
    app.include_router(catalog_router)
    app.include_router(stripe_webhook_router)
    app.include_router(callbacks_router)
    app.include_router(images_router)
    app.include_router(health_router)
    app.include_router(metrics_router)
    app.include_router(openai_router)
    install_console(app)
    _extend_openapi(app)
    return app


def _extend_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, routes=app.routes)
            schema.setdefault("components", {}).setdefault("schemas", {}).update(
                openapi_components()
            )
            app.openapi_schema = finished(schema)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

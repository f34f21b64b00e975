"""GET /metrics on the API's port (with IMAGEGATE_METRICS_TOKEN), and on a port of its own
(IMAGEGATE_METRICS_PORT) in every serve and worker process."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import os
from collections.abc import AsyncIterator, Iterator

import uvicorn
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from imagegate.errors import InvalidApiKey, UnknownEndpoint
from imagegate.metrics.state import Snapshot, state_metrics
from imagegate.services import Services

router = APIRouter()


async def render(services: Services) -> bytes:
    """The text exposition: this process's (or, in multiprocess mode, every process's) counts
    and the database's state."""
    registry = CollectorRegistry(auto_describe=False)
    multiprocess_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if multiprocess_dir:
        MultiProcessCollector(registry, path=multiprocess_dir)  # type: ignore[no-untyped-call]
    else:
        registry.register(Snapshot(REGISTRY.collect()))
    registry.register(Snapshot(await state_metrics(services)))
    return generate_latest(registry)


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    services: Services = request.app.state.services
    token = services.settings.metrics_token.get_secret_value()
    if not token:
        raise UnknownEndpoint("Metrics are not served on this port (set IMAGEGATE_METRICS_TOKEN).")
    given = request.headers.get("authorization", "")
    if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        raise InvalidApiKey("Metrics need 'Authorization: Bearer <IMAGEGATE_METRICS_TOKEN>'.")
    return Response(await render(services), media_type=CONTENT_TYPE_LATEST)


class _Server(uvicorn.Server):
    """A server beside the process's own: the process, not this server, handles signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.asynccontextmanager
async def metrics_port(services: Services) -> AsyncIterator[None]:
    """Serve /metrics, unauthenticated, on IMAGEGATE_METRICS_PORT while the block runs."""
    settings = services.settings
    if not settings.metrics_port:
        yield
        return
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    @app.get("/metrics")
    async def scrape() -> Response:
        return Response(await render(services), media_type=CONTENT_TYPE_LATEST)

    config = uvicorn.Config(
        app, host=settings.host, port=settings.metrics_port, log_level="warning",
        access_log=False, lifespan="off",
    )  # fmt: skip
    server = _Server(config)
    serving = asyncio.create_task(server.serve())
    try:
        yield
    finally:
        server.should_exit = True
        await serving

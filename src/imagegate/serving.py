"""`imagegate serve`'s HTTP server, stopped gracefully by SIGTERM or SIGINT."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Any

import uvicorn
from fastapi import FastAPI

from imagegate import heap
from imagegate.app import SERVER_OPTIONS
from imagegate.config import Settings
from imagegate.log_config import logging_config
from imagegate.metrics.families import process_exited


class DrainingServer(uvicorn.Server):
    """On a stop signal: stop accepting, end every wait (long-polls answer with the task as it
    is, event streams end), let in-flight requests finish within the shutdown grace, then run
    the app's shutdown (its workers get the same grace, then hand their jobs back)."""

    def __init__(self, config: uvicorn.Config, app: FastAPI) -> None:
        super().__init__(config)
        self.app = app

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        with super().capture_signals():
            yield
            # uvicorn raises the signal again once stopped, so the process dies of it; a stop
            # that finished its work is a clean exit (status 0) for process managers instead.
            self._captured_signals.clear()

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets)
        heap.settle()

    async def shutdown(self, sockets: Any = None) -> None:
        services = getattr(self.app.state, "services", None)
        if services is not None:
            services.watch.drain()
        await super().shutdown(sockets)


def serve(app: FastAPI, settings: Settings) -> None:
    """Run ``app`` on the settings' host and port until a stop signal."""
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level="info",
        access_log=settings.access_log,
        log_config=logging_config(settings),
        timeout_graceful_shutdown=math.ceil(settings.shutdown_grace),
        **SERVER_OPTIONS,
    )
    try:
        DrainingServer(config, app).run()
    finally:
        process_exited()

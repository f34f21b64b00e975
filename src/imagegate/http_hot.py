"""The two requests the API answers most, answered past FastAPI's routing: ``GET
/v1/tasks/{taskId}`` (clients poll it, many times per task) and ``POST /v1/images/generations``.

Before an endpoint runs, FastAPI walks its included routers, solves dependencies and wraps the
request in exception and exit-stack layers: for these two that is about as much CPU as the rest
of the request outside the network (bench/get_path_cost.py). This layer sits inside our
middlewares (request ids, metrics, rate-limit headers see these requests like any other) and
calls the same endpoints of ``tasks/router.py``, with the same error answers (``http_errors.py``).
Everything else, and these routes with a query string or another method, go on to FastAPI.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from types import SimpleNamespace
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from imagegate.http_errors import handled_error
from imagegate.tasks.router import create_generation, get_task

Endpoint = Callable[[Request], Awaitable[Any]]
_TASK = re.compile(r"^/v1/tasks/(?P<taskId>[^/]+)$")
_CREATE = re.compile(r"^/v1/images/generations$")
# (method, path, the route's template: what metrics/asgi.py labels the request by, endpoint)
_ROUTES: tuple[tuple[str, re.Pattern[str], SimpleNamespace, Endpoint], ...] = (
    ("GET", _TASK, SimpleNamespace(path="/v1/tasks/{taskId}"), get_task),
    ("POST", _CREATE, SimpleNamespace(path="/v1/images/generations"), create_generation),
)


class HotRoutes:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope["query_string"]:
            for method, pattern, route, endpoint in _ROUTES:
                found = pattern.match(scope["path"]) if scope["method"] == method else None
                if found is not None:
                    await self._answer(scope, receive, send, route, found, endpoint)
                    return
        await self.app(scope, receive, send)

    async def _answer(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        route: SimpleNamespace,
        found: re.Match[str],
        endpoint: Endpoint,
    ) -> None:
        scope["route"], scope["path_params"] = route, found.groupdict()
        request = Request(scope, receive)
        try:
            response = await endpoint(request)
        except Exception as exc:
            handled = await handled_error(request, exc)
            if handled is None:
                raise  # the 500 handler's, outside
            response = handled
        await response(scope, receive, send)

"""One ASGI layer around every HTTP request: its id (logs.py; every log line of the request
carries it, and the response returns it in X-Request-Id), its metrics (metrics/asgi.py; errors
included), and the rate-limit headers that authentication worked out, on every response of the
request. One layer, not one each: each layer wraps the request and each message the response
sends, and three cost twice what one does (bench/middleware_cost.py)."""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from imagegate.logs import begin_request, end_request
from imagegate.metrics.asgi import RequestMetrics

Headers = list[tuple[bytes, bytes]]


class RequestEdge:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.metrics = RequestMetrics()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        current, tokens = begin_request(scope)
        status = 500  # what the client gets when the app fails before it answers

        async def send_at_the_edge(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = with_rate_limit_headers(scope, list(message.get("headers", ())))
                message["headers"] = [*headers, (b"x-request-id", current.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_at_the_edge)
        finally:
            end_request(tokens)
            self.metrics.observe(scope, status, time.perf_counter() - started)


def with_rate_limit_headers(scope: Scope, headers: Headers) -> Headers:
    """``headers`` and the request's rate-limit headers (keys/auth.py puts them in its state,
    RateState.raw_headers) that ``headers`` does not already have."""
    extra = scope.get("state", {}).get("rate_limit_headers")
    if not extra:
        return headers
    present = {name.lower() for name, _ in headers}
    return headers + [h for h in extra if h[0] not in present]

"""What the per-request layer (http_edge.py: request ids, metrics, rate-limit headers) costs in
CPU, without the network or wrk's noise: around a do-nothing ASGI app, called in a loop in one
process.

    .venv/bin/python bench/middleware_cost.py
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from imagegate.http_edge import RequestEdge

CALLS = 50_000


class _Route:
    path = "/v1/tasks/{taskId}"


async def _app(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


async def _receive() -> dict[str, Any]:
    return {"type": "http.request"}


async def _send(message: Any) -> None:
    pass


async def _per_call(app: Any) -> float:
    started = time.perf_counter()
    for _ in range(CALLS):
        scope = {"type": "http", "method": "GET", "headers": [(b"host", b"x")], "route": _Route}
        await app(scope, _receive, _send)
    return (time.perf_counter() - started) / CALLS * 1e6


async def main() -> None:
    stacks = {
        "none (the app alone)": _app,
        "RequestEdge": RequestEdge(_app),
    }
    print("| layer | µs per request (best of 3) |\n| --- | --- |")
    for name, app in stacks.items():
        best = min([await _per_call(app) for _ in range(3)])
        print(f"| {name} | {best:.1f} |")


if __name__ == "__main__":
    asyncio.run(main())

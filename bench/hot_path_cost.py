"""What GET /v1/tasks/{taskId} and POST /v1/images/generations cost in CPU inside the app,
without the network or wrk's noise: the whole ASGI app (our middlewares, the endpoint, SQLite)
called in a loop in one process, on the hot path (http_hot.py) and, with a query string, through
FastAPI's routing. No worker runs (the creates' jobs wait).

    .venv/bin/python bench/hot_path_cost.py
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from imagegate.app import create_app
from imagegate.billing import service as billing
from imagegate.config import Settings
from imagegate.keys.service import create_key

CALLS = 5_000
BODY = json.dumps({"model": "ideogram-v4", "input": {"prompt": "a cat"}}).encode()


async def _per_call(
    app: Any, method: str, path: str, query: bytes, key: str, calls: int = CALLS
) -> float:
    """µs per request of ``calls`` requests, one after another."""
    headers = [(b"host", b"127.0.0.1"), (b"authorization", f"Bearer {key}".encode()),
               (b"content-type", b"application/json")]  # fmt: skip
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": BODY if method == "POST" else b""}

    async def send(message: Any) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    started = time.perf_counter()
    for _ in range(calls):
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
            "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": query,
            "root_path": "", "headers": headers, "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000), "state": {},
        }  # fmt: skip
        await app(scope, receive, send)
    assert set(statuses) == {200}, set(statuses)
    return (time.perf_counter() - started) / calls * 1e6


@asynccontextmanager
async def started_app() -> AsyncIterator[tuple[Any, str, str]]:
    """The app started on a fresh SQLite file with no worker and no rate limit to speak of: the
    app, and an account's id and key with credits for any run."""
    with tempfile.TemporaryDirectory() as data:
        settings = Settings(data_dir=Path(data), rate_limit_per_minute=10**9, access_log=False)
        app = create_app(settings, run_worker=False)
        async with app.router.lifespan_context(app):
            services = app.state.services
            async with services.db.transaction() as session:
                account = await billing.create_account(session, "bench", 10**9, 0.0)
                _, key = await create_key(session, services.hasher, account.id, "", 0.0)
            yield app, account.id, key


async def main() -> None:
    async with started_app() as (app, account_id, key):
        await _per_call(app, "POST", "/v1/images/generations", b"", key)  # warm, and a task
        async with app.state.services.db.sessions() as session:
            [entry] = await billing.recent_entries(session, account_id, 1)
        task_path = f"/v1/tasks/{entry.task_id}"
        print("| in-process, SQLite, µs per request (best of 3) | hot path | through FastAPI |")
        print("| --- | --- | --- |")
        rows = (
            ("GET /v1/tasks/{taskId}", "GET", task_path),
            ("POST /v1/images/generations", "POST", "/v1/images/generations"),
        )
        for label, method, path in rows:
            best = []
            for query in (b"", b"q=1"):
                best.append(min([await _per_call(app, method, path, query, key)
                                 for _ in range(3)]))  # fmt: skip
            print(f"| {label} | {best[0]:.0f} | {best[1]:.0f} |")


if __name__ == "__main__":
    asyncio.run(main())

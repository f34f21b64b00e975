"""GET /healthz (the process is up) and GET /readyz (it can serve: database reachable, schema
current, Redis reachable when configured). Outside /v1, no key needed."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter
from sqlalchemy import text

from imagegate.db.migrate import is_current
from imagegate.errors import UpstreamUnavailable
from imagegate.http_routes import get_and_head
from imagegate.keys.auth import ServicesDep

router = APIRouter(include_in_schema=False)


@get_and_head(router, "/healthz")
async def healthz() -> dict[str, Any]:
    return {"status": "ok"}


@get_and_head(router, "/readyz")
async def readyz(services: ServicesDep) -> dict[str, Any]:
    checks: dict[str, str] = {}
    try:
        async with services.db.sessions() as session:
            await session.execute(text("SELECT 1"))
        current = await asyncio.to_thread(is_current, services.db.url)
        checks["database"] = "ok"
        checks["migrations"] = "ok" if current else "behind: run `imagegate db upgrade`"
    except Exception as exc:  # any failure to reach the database means not ready
        checks["database"] = f"unreachable: {type(exc).__name__}"
    if services.settings.redis_url:
        reachable = await services.rate_limiter.healthy()
        checks["redis"] = "ok" if reachable else "unreachable"
    failing = {name: state for name, state in checks.items() if state != "ok"}
    if failing:
        detail = "; ".join(f"{name} {state}" for name, state in failing.items())
        raise UpstreamUnavailable(f"Not ready: {detail}.")
    return {"status": "ready", "checks": checks}

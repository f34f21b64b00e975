"""GET /healthz (the process is up) and GET /readyz (it can serve: database reachable, schema
current, Redis reachable when configured). Outside /v1, no key needed."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import text

from imagegate.db.migrate import is_current
from imagegate.errors import UpstreamUnavailable
from imagegate.http_docs import ErrorEnvelope
from imagegate.http_routes import get_and_head
from imagegate.keys.auth import ServicesDep

router = APIRouter()


class Healthy(BaseModel):
    status: Literal["ok"]


class Ready(BaseModel):
    status: Literal["ready"]
    checks: dict[str, Literal["ok"]]  # database, migrations, and redis when configured


_NOT_READY: dict[int | str, dict[str, Any]] = {
    500: {"description": "Error: internal_error", "model": ErrorEnvelope},
    503: {"description": "Error: upstream_error (not ready)", "model": ErrorEnvelope},
}


@get_and_head(router, "/healthz", response_model=Healthy)
async def healthz() -> dict[str, Any]:
    """The process is up."""
    return {"status": "ok"}


@get_and_head(router, "/readyz", response_model=Ready, responses=_NOT_READY)
async def readyz(services: ServicesDep) -> dict[str, Any]:
    """The process can serve: its database reachable, its schema current, Redis reachable."""
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

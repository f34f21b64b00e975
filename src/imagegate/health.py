"""GET /healthz (the process is up) and GET /readyz (it can serve: database reachable, schema
current, Redis reachable when configured). Outside /v1, no key needed."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel

from imagegate.db.migrate import database_revision, schema_problem
from imagegate.errors import NotReady
from imagegate.http_docs import ErrorEnvelope
from imagegate.http_routes import get_and_head
from imagegate.keys.auth import ServicesDep

router = APIRouter()


class Healthy(BaseModel):
    status: Literal["ok"]


class Ready(BaseModel):
    status: Literal["ready"]
    checks: dict[str, Literal["ok"]]  # database, migrations, and redis when configured


# Not ready is no provider's fault: its own code (errors.NotReady), its message naming the cause.
_NOT_READY: dict[int | str, dict[str, Any]] = {
    500: {"description": "Error: internal_error", "model": ErrorEnvelope},
    503: {
        "description": "Error: not_ready (the database unreachable, its schema not this"
        " release's, or Redis unreachable; the message says which)",
        "model": ErrorEnvelope,
    },
}


@get_and_head(router, "/healthz", response_model=Healthy)
async def healthz() -> dict[str, Any]:
    """The process is up."""
    return {"status": "ok"}


@get_and_head(router, "/readyz", response_model=Ready, responses=_NOT_READY)
async def readyz(services: ServicesDep) -> dict[str, Any]:
    """The process can serve: its database reachable, its schema current, Redis reachable."""
    problems: list[str] = []
    try:
        revision = await database_revision(services.db.engine)
    except Exception as exc:  # any failure to reach the database means not ready
        problems.append(f"database unreachable: {type(exc).__name__}")
    else:
        problem = schema_problem(revision)
        if problem is not None:
            problems.append(problem)
    if services.settings.redis_url and not await services.rate_limiter.healthy():
        problems.append("redis unreachable")
    if problems:
        raise NotReady(f"Not ready: {'; '.join(problems)}.")
    checks = {"database": "ok", "migrations": "ok"}
    if services.settings.redis_url:
        checks["redis"] = "ok"
    return {"status": "ready", "checks": checks}

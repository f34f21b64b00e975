"""/healthz and /readyz, as a load balancer or an orchestrator probes them."""

from __future__ import annotations

import asyncio

from alembic import command

from harness import Server, free_port, running_server
from imagegate.config import Settings
from imagegate.db.migrate import alembic_config


async def test_healthy_and_ready_without_a_key(server: Server) -> None:
    assert (await server.http.get("/healthz")).json() == {"status": "ok"}
    ready = await server.http.get("/readyz")
    assert ready.status_code == 200
    body = ready.json()
    assert body["status"] == "ready"
    assert body["checks"]["database"] == body["checks"]["migrations"] == "ok"
    if server.services.settings.redis_url:
        assert body["checks"]["redis"] == "ok"


async def test_not_ready_while_the_schema_is_behind(server: Server) -> None:
    url = server.services.settings.resolved_database_url
    await asyncio.to_thread(command.downgrade, alembic_config(url), "0002")
    response = await server.http.get("/readyz")
    assert response.status_code == 503
    error = response.json()["error"]
    assert (error["code"], error["type"]) == ("upstream_error", "upstream_error")
    assert error["message"] == "Not ready: migrations behind: run `imagegate db upgrade`."
    assert (await server.http.get("/healthz")).status_code == 200  # up, just not ready


async def test_not_ready_when_redis_is_unreachable(settings: Settings) -> None:
    nowhere = settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{free_port()}/0"})
    async with running_server(nowhere) as server:
        response = await server.http.get("/readyz")
    assert response.status_code == 503
    assert response.json()["error"]["message"] == "Not ready: redis unreachable."

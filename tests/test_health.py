"""/healthz and /readyz, as a load balancer or an orchestrator probes them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from alembic import command
from sqlalchemy import text

from harness import PostgresDatabases, Server, free_port, running_server, serve_asgi
from imagegate.app import create_app
from imagegate.config import Settings
from imagegate.db.migrate import alembic_config, known_revisions


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
    assert (error["code"], error["type"]) == ("not_ready", "api_error")
    head, _ = known_revisions()
    assert error["message"] == (
        f"Not ready: the database schema is behind (revision 0002, this imagegate needs {head});"
        " run `imagegate db upgrade`."
    )
    assert (await server.http.get("/healthz")).status_code == 200  # up, just not ready


async def test_not_ready_when_redis_is_unreachable(settings: Settings) -> None:
    nowhere = settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{free_port()}/0"})
    async with running_server(nowhere) as server:
        response = await server.http.get("/readyz")
    assert response.status_code == 503
    assert response.json()["error"]["message"] == "Not ready: redis unreachable."


async def test_not_ready_when_the_schema_is_newer_than_this_release(server: Server) -> None:
    async with server.services.db.transaction() as session:
        await session.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    response = await server.http.get("/readyz")
    assert response.status_code == 503
    assert response.json()["error"] == {
        "code": "not_ready",
        "message": "Not ready: the database schema is newer than this imagegate (revision 9999);"
        " upgrade imagegate.",
        "type": "api_error",
    }


@asynccontextmanager
async def api_only(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The API alone (no worker, no migration at start), for a database that is not there."""
    app = create_app(settings, run_worker=False, migrate=False)
    async with serve_asgi(app) as base_url, httpx.AsyncClient(base_url=base_url) as http:
        yield http


def nowhere(settings: Settings, tmp_path: Path) -> str:
    """A database URL that cannot be reached: a SQLite file under a plain file (no folder
    there), or a PostgreSQL port nobody listens on."""
    if settings.resolved_database_url.startswith("sqlite"):
        (tmp_path / "a-file").write_text("not a folder")
        return f"sqlite+aiosqlite:///{tmp_path / 'a-file' / 'imagegate.db'}"
    return f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/imagegate"


async def test_not_ready_names_an_unreachable_database(settings: Settings, tmp_path: Path) -> None:
    unreachable = settings.model_copy(update={"database_url": nowhere(settings, tmp_path)})
    async with api_only(unreachable) as http:
        response = await http.get("/readyz")
        assert (await http.get("/healthz")).status_code == 200  # up, just not ready
    assert response.status_code == 503
    error = response.json()["error"]
    assert (error["code"], error["type"]) == ("not_ready", "api_error")
    assert error["message"] == "Not ready: database unreachable: OperationalError."


async def test_not_ready_once_the_database_is_dropped(
    settings: Settings, postgres: PostgresDatabases | None
) -> None:
    if postgres is None:
        pytest.skip("PostgreSQL: a database dropped under a running server")
    async with api_only(settings) as http:
        assert (await http.get("/readyz")).status_code == 200
        postgres.drop(settings.resolved_database_url)
        response = await http.get("/readyz")
    assert response.status_code == 503
    message = response.json()["error"]["message"]
    assert message.startswith("Not ready: database unreachable: ")

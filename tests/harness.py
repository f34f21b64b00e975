"""Test support: a real imagegate server on loopback, databases per test, polling with deadlines."""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import psycopg
import uvicorn
from fastapi import FastAPI

from imagegate.app import SERVER_OPTIONS, create_app
from imagegate.billing import service as billing
from imagegate.clock import ManualClock
from imagegate.config import Settings
from imagegate.db.migrate import upgrade
from imagegate.db.pg_hot import conninfo
from imagegate.jobs.admin import JobAdmin, JobInfo
from imagegate.jobs.procrastinate_worker import MAINTENANCE_QUEUE
from imagegate.keys.policy import PolicyChange
from imagegate.keys.service import create_key
from imagegate.providers.base import GeneratedImage, GenerationRequest, Provider
from imagegate.providers.simulator import SimulatorProvider
from imagegate.services import Services

T = TypeVar("T")

# IMAGEGATE_TEST_BACKEND=postgres runs the suite on PostgreSQL (the server named below).
BACKEND = os.environ.get("IMAGEGATE_TEST_BACKEND", "sqlite")
PG_ADMIN_URL = os.environ.get(
    "IMAGEGATE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
# The postgres pass is the scale-out configuration: rate limits are kept in Redis too.
REDIS_URL = (
    os.environ.get("IMAGEGATE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    if BACKEND == "postgres"
    else ""
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pg_url(database: str) -> str:
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    return f"{base}/{database}"


class PostgresDatabases:
    """A template database migrated once; each test gets a fresh copy of it."""

    def __init__(self) -> None:
        self.template = f"ig_tmpl_{uuid.uuid4().hex[:10]}"
        self.created: list[str] = []

    def _admin(self, sql: str) -> None:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(sql)  # type: ignore[arg-type]

    def setup(self) -> None:
        self._admin(f"CREATE DATABASE {self.template}")
        upgrade(pg_url(self.template))

    def new(self) -> str:
        name = f"ig_{uuid.uuid4().hex[:16]}"
        self._admin(f"CREATE DATABASE {name} TEMPLATE {self.template}")
        self.created.append(name)
        return pg_url(name)

    def drop(self, url: str) -> None:
        self._admin(f"DROP DATABASE IF EXISTS {url.rsplit('/', 1)[1]} WITH (FORCE)")

    def teardown(self) -> None:
        self._admin(f"DROP DATABASE IF EXISTS {self.template} WITH (FORCE)")


async def wait_for(
    probe: Callable[[], Awaitable[T | None]], within: float = 20.0, interval: float = 0.05
) -> T:
    """Poll ``probe`` until it returns something truthy, or fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        result = await probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within}s (last: {result!r})")
        await asyncio.sleep(interval)


@dataclass
class Account:
    id: str
    key: str
    key_id: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


@dataclass
class Server:
    base_url: str
    app: FastAPI
    clock: ManualClock
    http: httpx.AsyncClient

    @property
    def services(self) -> Services:
        services: Services = self.app.state.services
        return services

    async def account(
        self, credits: int = 1000, name: str = "test", policy: PolicyChange | None = None
    ) -> Account:
        """A new account with ``credits`` and one key (with ``policy``), as an operator makes it."""
        now = self.clock.now()
        async with self.services.db.transaction() as session:
            account = await billing.create_account(session, name, credits, now)
            key, plaintext = await create_key(
                session, self.services.hasher, account.id, "", now, policy
            )
        return Account(id=account.id, key=plaintext, key_id=key.id)

    async def create(self, account: Account, **input_fields: Any) -> httpx.Response:
        body: dict[str, Any] = {
            "model": "ideogram-v4",
            "input": {"prompt": "a cat", **input_fields},
        }
        return await self.http.post("/v1/images/generations", json=body, headers=account.headers)

    async def run(self, account: Account, **input_fields: Any) -> dict[str, Any]:
        """Create a task (must be accepted) and wait for it to be final."""
        response = await self.create(account, **input_fields)
        assert response.status_code == 200, response.text
        return await self.wait_final(account, response.json()["data"]["taskId"])

    async def task(self, account: Account, task_id: str) -> dict[str, Any]:
        response = await self.http.get(f"/v1/tasks/{task_id}", headers=account.headers)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def wait_final(
        self, account: Account, task_id: str, within: float = 20
    ) -> dict[str, Any]:
        async def final() -> dict[str, Any] | None:
            task = await self.task(account, task_id)
            return task if task["status"] in ("completed", "failed") else None

        return await wait_for(final, within)

    async def stop_workers(self) -> None:
        """Stop this server's job workers (jobs then wait until ``services.start_workers()``)."""
        await self.services.stop_workers()

    async def jobs(self, status: str | None = None, queue: str | None = None) -> list[JobInfo]:
        """The jobs that wait, run, failed or were cancelled (either engine), newest first;
        procrastinate's periodic maintenance jobs left out."""
        jobs = await JobAdmin(self.services.db, {}, self.clock).list(status, queue)
        return [job for job in jobs if job.queue != MAINTENANCE_QUEUE]

    async def ledger(self, account: Account) -> tuple[int, int]:
        """(balance, sum of ledger entries) of the account."""
        async with self.services.db.sessions() as session:
            return (
                await billing.balance(session, account.id),
                await billing.ledger_sum(session, account.id),
            )


class HeldProvider:
    """The simulator, holding every generation until ``release`` is set; counts the
    generations started and those cancelled while held."""

    name = "simulator"

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.started = 0
        self.cancelled = 0
        self.simulator = SimulatorProvider(lambda _speed: 0.0)

    async def generate(self, request: GenerationRequest) -> list[GeneratedImage]:
        self.started += 1
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        return await self.simulator.generate(request)


@asynccontextmanager
async def held_server(settings: Settings, held: HeldProvider) -> AsyncIterator[Server]:
    async with running_server(settings, providers={"ideogram-v4": held}) as server:
        try:
            yield server
        finally:
            held.release.set()  # lets the worker stop


class DatabaseClock(ManualClock):
    """The tests' clock on PostgreSQL, where procrastinate counts due times and heartbeats on the
    database's clock, which a test cannot move: advancing this clock also moves every scheduled
    job's due time and every job event back by as much, which is what the database's clock
    moving on would do. (Not the workers' heartbeats: live workers would beat again, and a test's
    dead worker is given an old heartbeat instead.)"""

    def __init__(self, url: str) -> None:
        super().__init__()
        self.conninfo = conninfo(url)

    def advance(self, seconds: float) -> None:
        super().advance(seconds)
        # Synchronous, with this event loop blocked: rows that a transaction of this process
        # holds are skipped (they are being written now), never waited for.
        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            for table, column, which in _DATABASE_TIMES:
                conn.execute(
                    f"UPDATE {table} SET {column} = {column} - make_interval(secs => %(s)s)"
                    f" WHERE id IN (SELECT id FROM {table} WHERE {which}"
                    " FOR UPDATE SKIP LOCKED)",  # type: ignore[arg-type]
                    {"s": seconds},
                )


_DATABASE_TIMES = (
    ("procrastinate_jobs", "scheduled_at", "status = 'todo' AND scheduled_at IS NOT NULL"),
    ("procrastinate_events", "at", "true"),
)


def clock_for(settings: Settings) -> ManualClock:
    url = settings.resolved_database_url
    return ManualClock() if url.startswith("sqlite") else DatabaseClock(url)


@asynccontextmanager
async def running_server(
    settings: Settings, providers: dict[str, Provider] | None = None
) -> AsyncIterator[Server]:
    """imagegate in this event loop, on a free loopback port, with its in-process worker."""
    clock = clock_for(settings)
    app = create_app(settings, clock=clock, providers=providers)
    config = uvicorn.Config(
        app, host=settings.host, port=settings.port, log_level="warning", **SERVER_OPTIONS
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    await wait_for(lambda: _started(server, serving), within=30)
    base_url = f"http://{settings.host}:{settings.port}"
    try:
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
            yield Server(base_url=base_url, app=app, clock=clock, http=http)
    finally:
        server.should_exit = True
        await serving


@asynccontextmanager
async def serve_asgi(app: Any, on_exit: Callable[[], None] = lambda: None) -> AsyncIterator[str]:
    """A loopback HTTP server for ``app`` (a fake upstream, a callback receiver) in this event
    loop; yields its base URL. ``on_exit`` runs first on the way out (to release hung requests)."""
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=1
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    await wait_for(lambda: _started(server, serving), within=20)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        on_exit()
        server.should_exit = True
        await serving


async def _started(server: uvicorn.Server, serving: asyncio.Task[None]) -> bool:
    if serving.done():
        serving.result()  # raise the start-up error
        raise AssertionError("server exited during start-up")
    return server.started

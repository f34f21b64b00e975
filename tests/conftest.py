from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from harness import BACKEND, REDIS_URL, PostgresDatabases, Server, free_port, running_server
from imagegate.config import Settings


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresDatabases | None]:
    if BACKEND != "postgres":
        yield None
        return
    databases = PostgresDatabases()
    databases.setup()
    yield databases
    databases.teardown()


@pytest.fixture
def database_url(tmp_path: Path, postgres: PostgresDatabases | None) -> Iterator[str]:
    if postgres is None:
        yield f"sqlite+aiosqlite:///{tmp_path / 'imagegate.db'}"
        return
    url = postgres.new()
    yield url
    postgres.drop(url)


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        port=free_port(),
        simulator_delay=0.0,
        worker_poll_interval=0.05,
        job_stall_seconds=3.0,
        rate_limit_per_minute=100_000,  # tests that poll hard are not about rate limits
        redis_url=REDIS_URL,
        shutdown_grace=5.0,  # a test's server stops without waiting half a minute for its jobs
    )


@pytest.fixture
async def server(settings: Settings) -> AsyncIterator[Server]:
    async with running_server(settings) as running:
        yield running

"""What one request-path statement costs this process on PostgreSQL, by driver: GET's lookup (key,
account and task joined; no rows match) run by 10 concurrent connections under uvloop, as
`imagegate serve` runs it, through psycopg (async, prepared) and through asyncpg (db/pg_hot.py).

    .venv/bin/python bench/pg_statement_cost.py        # BENCH_POSTGRES_URL: another server
"""

from __future__ import annotations

import asyncio
import resource
import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import psycopg
import uvloop

from imagegate.db.migrate import upgrade
from imagegate.db.pg_hot import conninfo, positional
from imagegate.tasks.store import _CALLER_AND_TASK
from procs import backend

STATEMENTS = 20_000
CONNECTIONS = 10
PARAMS = {"hash": "no-such-key", "task_id": "no-such-task"}


async def _psycopg(url: str) -> Callable[[int], Awaitable[None]]:
    sql = _CALLER_AND_TASK
    for name in PARAMS:
        sql = sql.replace(f":{name}", f"%({name})s")
    connect = psycopg.AsyncConnection.connect
    conns = [await connect(url, autocommit=True) for _ in range(CONNECTIONS)]

    async def run(count: int) -> None:
        async def one(conn: psycopg.AsyncConnection[Any]) -> None:
            for _ in range(count // CONNECTIONS):
                await (await conn.execute(sql, PARAMS, prepare=True)).fetchone()

        await asyncio.gather(*(one(conn) for conn in conns))

    return run


async def _asyncpg(url: str) -> Callable[[int], Awaitable[None]]:
    sql, names = positional(_CALLER_AND_TASK)
    args = [PARAMS[name] for name in names]
    conns = [await asyncpg.connect(url) for _ in range(CONNECTIONS)]

    async def run(count: int) -> None:
        async def one(conn: asyncpg.Connection) -> None:
            for _ in range(count // CONNECTIONS):
                await conn.fetchrow(sql, *args)

        await asyncio.gather(*(one(conn) for conn in conns))

    return run


async def _measure(run: Callable[[int], Awaitable[None]]) -> tuple[float, float]:
    await run(1_000)  # connections warm, statements prepared
    before, started = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    await run(STATEMENTS)
    after, took = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter() - started
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return STATEMENTS / took, cpu / STATEMENTS * 1e6


async def _compare(url: str) -> None:
    print("| driver | statements/s | this process's CPU per statement |\n| --- | --- | --- |")
    for name, make in (("psycopg", _psycopg), ("asyncpg", _asyncpg)):
        rate, cpu = await _measure(await make(url))
        print(f"| {name} | {rate:,.0f} | {cpu:.0f} µs |")


if __name__ == "__main__":
    with backend("postgres") as database:
        upgrade(database.database_url)
        uvloop.run(_compare(conninfo(database.database_url)))

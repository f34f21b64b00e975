"""What a create costs in SQLite time inside a group commit, with and without a savepoint around
each create (db/sqlite_hot.py runs them without, unless one fails after writing): the request
path's own statements (the caller's read, then tasks/service.py's create_task), run on a
connection of their own in groups of GROUP, the size the writer commits under load (32 clients).

    .venv/bin/python bench/sqlite_group_cost.py
"""

from __future__ import annotations

import asyncio
import sqlite3
import time

from hot_path_cost import BODY, started_app
from imagegate.db.sqlite_hot import SqliteTx, connect
from imagegate.keys.service import check_caller, key_hash
from imagegate.keys.store import CALLER_WIDTH
from imagegate.services import Services
from imagegate.tasks import service, store
from imagegate.tasks.schemas import parse_create_request

GROUP = 15  # creates per commit (the writer's average under bench/run.py's create load)
GROUPS = 400


async def _per_create(
    conn: sqlite3.Connection, services: Services, hashed: str, savepoint: bool
) -> float:
    """µs of SQLite (and the statements' Python) per create, over GROUPS groups."""
    tx = SqliteTx(conn)
    request = parse_create_request(BODY)
    started = time.perf_counter()
    for _ in range(GROUPS):
        conn.execute("BEGIN IMMEDIATE")
        for _ in range(GROUP):
            row = await store.creator(tx, hashed)
            assert row is not None
            now = time.time()
            caller = check_caller(row, now)
            models = await services.catalog.at(row[CALLER_WIDTH])
            model = service.admitted_model(caller, request, models)
            task = service.new_task(caller, request, now, model)
            if savepoint:
                conn.execute("SAVEPOINT op")
            await service.create_task(tx, services.queue, task)
            if savepoint:
                conn.execute("RELEASE op")
        conn.execute("COMMIT")
    return (time.perf_counter() - started) / (GROUPS * GROUP) * 1e6


async def main() -> None:
    async with started_app() as (app, _, key):
        services = app.state.services
        conn = connect(services.db.hot._path)
        hashed = key_hash(services.hasher, f"Bearer {key}")
        await _per_create(conn, services, hashed, False)  # warm: statements, pages
        print(f"| a create in a group of {GROUP}, µs (best of 3) | per create |")
        print("| --- | --- |")
        for label, savepoint in (("each in a savepoint", True), ("no savepoints", False)):
            best = min([await _per_create(conn, services, hashed, savepoint) for _ in range(3)])
            print(f"| {label} | {best:.1f} |")
        conn.close()


if __name__ == "__main__":
    asyncio.run(main())

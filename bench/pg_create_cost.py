"""Where a create's write goes on PostgreSQL, outside HTTP: the charging transaction as
tasks/service.py writes it (the task, its job through procrastinate's defer function, the charge
with its ledger entry), built up part by part, then as the one statement a plain create is
(tasks/service.py's create_tasks_in_one, with one create), and as the grouped statement that
carries the creates of several requests, run on the request path's connections (db/pg_hot.py).
Per create: wall time, the server backend's CPU (read from /proc: the server must run on this
machine) and this process's CPU.

One connection, one after another: what each part costs. Then 10 connections at once on one
account, as the throughput benchmark's 1-account row loads it.

    .venv/bin/python bench/pg_create_cost.py
"""

from __future__ import annotations

import asyncio
import os
import resource
import time
import uuid
from collections.abc import Awaitable, Callable

import uvloop

from imagegate.billing import store as ledger
from imagegate.catalog import IDEOGRAM_V4
from imagegate.clock import Clock
from imagegate.db.pg_hot import PgHot, conninfo
from imagegate.db.sql import Tx
from imagegate.jobs import store as jobs
from imagegate.jobs.queue import JobQueue
from imagegate.keys.service import Principal
from imagegate.tasks import service
from imagegate.tasks import store as tasks
from imagegate.tasks.schemas import parse_create_request
from procs import backend, provision

CREATES = 1_600  # (a multiple of 10 connections times the biggest group, 32)
_QUEUE = IDEOGRAM_V4.queue
Part = Callable[[Tx, str, str, str], Awaitable[object]]


async def _task(tx: Tx, task_id: str, account: str, key: str) -> None:
    now = time.time()
    await tasks.insert(
        tx, id=task_id, account_id=account, key_id=key, model="ideogram-v4",
        input={"prompt": "bench", "size": "1:1", "rendering_speed": "TURBO"},
        callback_url=None, price=16, created_at=now, reported_model="ideogram-v4",
    )  # fmt: skip


async def _job(tx: Tx, task_id: str, account: str, key: str) -> None:
    now = time.time()
    job = {"task_id": task_id}
    await jobs.insert(tx, jobs.NewJob(_QUEUE, "run_task", job, now, now, f"task:{task_id}"))


async def _charge(tx: Tx, task_id: str, account: str, key: str) -> object:
    return await ledger.charge(tx, account, key, task_id, 16, time.time())


def _in_one(size: int) -> Part:
    """The creates of ``size`` requests in one statement (tasks/service.py), as the grouped
    write sends them."""

    async def part(tx: Tx, task_id: str, account: str, key: str) -> object:
        now, queue = time.time(), JobQueue(Clock())
        body = parse_create_request(b'{"model": "ideogram-v4", "input": {"prompt": "bench"}}')
        tasks = [
            service.new_task(Principal(key, account), body, now, IDEOGRAM_V4) for _ in range(size)
        ]
        creates = [(task, service.run_job(queue, task)) for task in tasks]
        created = await service.create_tasks_in_one(tx, queue, creates)
        assert len(created) == size, "a create was not charged"
        return created

    return part


WHOLE = "the whole create as one statement (tasks/service.py), without BEGIN and COMMIT"
# (row, parts, creates per statement: 0 for a transaction of the parts, one create)
STEPS: list[tuple[str, list[Part], int]] = [
    ("BEGIN + COMMIT alone", [], 0),
    ("+ the task", [_task], 0),
    ("+ its job (procrastinate's defer)", [_task, _job], 0),
    ("+ the charge and its ledger entry (the whole create)", [_task, _job, _charge], 0),
    (WHOLE, [_in_one(1)], 1),
    ("the creates of 8 requests in one statement (per create)", [_in_one(8)], 8),
    ("the creates of 32 requests in one statement (per create)", [_in_one(32)], 32),
]


def _ticks(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime + stime
    return total


async def _run(
    hot: PgHot, parts: list[Part], account: str, key: str, workers: int, size: int = 0
) -> None:
    async def one() -> None:
        task_id = str(uuid.uuid4())

        async def op(tx: Tx) -> None:
            for part in parts:
                await part(tx, task_id, account, key)

        await hot.write(op, one_statement=size > 0)

    async def worker() -> None:
        for _ in range(CREATES // workers // max(size, 1)):
            await one()

    await asyncio.gather(*(worker() for _ in range(workers)))


async def _measure(url: str, account: str, key: str) -> None:
    tick = 1e6 / os.sysconf("SC_CLK_TCK")
    print("| transaction | connections | per second | wall µs | server CPU µs | client CPU µs |")
    print("| --- | --- | --- | --- | --- | --- |")
    for workers, steps in ((1, STEPS), (10, STEPS[3:])):
        hot = PgHot(url, workers)
        await _run(hot, [], account, key, workers)  # open the connections
        rows = await hot.read(lambda tx: tx.all(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            " AND backend_type = 'client backend'"
        ))  # fmt: skip
        pids = [row[0] for row in rows]
        for name, parts, size in steps:
            await _run(hot, parts, account, key, workers, size)  # warm: statements prepared
            ticks, mine, started = _ticks(pids), resource.getrusage(0), time.perf_counter()
            await _run(hot, parts, account, key, workers, size)
            took = time.perf_counter() - started
            after = resource.getrusage(0)
            client = (after.ru_utime - mine.ru_utime + after.ru_stime - mine.ru_stime) * 1e6
            server = (_ticks(pids) - ticks) * tick
            print(f"| {name} | {workers} | {CREATES / took:,.0f} | {took / CREATES * 1e6:,.0f} |"
                  f" {server / CREATES:,.0f} | {client / CREATES:,.0f} |")  # fmt: skip
        await hot.close()


if __name__ == "__main__":
    with backend("postgres") as database:
        provision(database.env(0))
        url = conninfo(database.database_url)

        async def main() -> None:
            hot = PgHot(url, 1)
            account, key = await hot.read(
                lambda tx: tx.one("SELECT account_id, id FROM api_keys")
            ) or ("", "")
            await hot.close()
            await _measure(url, account, key)

        uvloop.run(main())

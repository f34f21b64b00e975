"""The job queue port's promises, on whichever engine the suite runs against: the table queue on
SQLite, procrastinate on PostgreSQL (IMAGEGATE_TEST_BACKEND). Retries, give-up with one refund
and stalled workers are in test_worker.py; kill -9 in tests/test_durability.py and
tests/test_scale_out.py."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import procrastinate.schema

from harness import Server, running_server, wait_for
from imagegate.config import Settings
from imagegate.db.migrate import PROCRASTINATE_SCHEMA
from imagegate.jobs import admin
from imagegate.services import job_kinds
from imagegate.tasks.service import RUN_TASK
from receiver import running_receiver


class RolledBack(Exception):
    pass


async def test_a_job_commits_or_rolls_back_with_its_transaction(server: Server) -> None:
    await server.stop_workers()
    queue, db = server.services.queue, server.services.db
    with contextlib.suppress(RolledBack):
        async with db.transaction() as session:
            await queue.defer(session, RUN_TASK, {"task_id": "gone"}, queue="model:x")
            (job,) = await admin.list_jobs(session, queue="model:x")
            assert job.args == {"task_id": "gone"}
            raise RolledBack
    assert await server.jobs() == []
    async with db.transaction() as session:
        await queue.defer(session, RUN_TASK, {"task_id": "kept"}, queue="model:x")
    (job,) = await server.jobs()
    assert (job.kind, job.queue, job.status, job.args) == (
        RUN_TASK, "model:x", "todo", {"task_id": "kept"}
    )  # fmt: skip


async def test_a_scheduled_callback_attempt_survives_a_restart(settings: Settings) -> None:
    lenient = settings.model_copy(update={"callback_allow_private": True})
    body = {"model": "ideogram-v4", "input": {"prompt": "a lighthouse"}}
    async with running_receiver(lambda n: 500 if n == 1 else 200) as receiver:
        async with running_server(lenient) as server:
            account = await server.account()
            body["callback_url"] = receiver.url
            created = await server.http.post(
                "/v1/images/generations", json=body, headers=account.headers
            )
            await receiver.count(1)  # the first attempt failed; the next is due in 3 minutes
            await wait_for(lambda: _waiting_callback(server))
        async with running_server(lenient) as server:  # the same database, a new process
            server.clock.advance(181)
            await receiver.count(2)
    assert [json.loads(r.body)["id"] for r in receiver.received] == [
        created.json()["data"]["taskId"]
    ] * 2


async def _waiting_callback(server: Server) -> bool:
    return any(job.kind == "deliver_callback" for job in await server.jobs(status="todo"))


async def test_a_cancelled_job_fails_its_task_with_one_refund(server: Server) -> None:
    account = await server.account(credits=100)
    await server.stop_workers()
    task_id = (await server.create(account)).json()["data"]["taskId"]
    (job,) = await server.jobs(status="todo")
    jobs = admin.JobAdmin(server.services.db, job_kinds(server.services), server.clock)
    cancelled = await jobs.cancel(job.id)
    assert cancelled.status == "cancelled"
    task = await server.task(account, task_id)
    assert (task["status"], task["error"]["code"]) == ("failed", "internal_error")
    assert await server.ledger(account) == (100, 100)  # charged, refunded once
    with contextlib.suppress(admin.JobStateError):
        await jobs.cancel(job.id)  # a second cancel is refused, and refunds nothing
        raise AssertionError("a cancelled job was cancelled again")
    assert await server.ledger(account) == (100, 100)


async def test_jobs_that_ended_are_deleted_after_the_retention(server: Server) -> None:
    account = await server.account(credits=100)
    await server.stop_workers()
    kinds = job_kinds(server.services)
    jobs = admin.JobAdmin(server.services.db, kinds, server.clock)
    for _ in range(2):
        await server.create(account)
    old, recent = reversed(await server.jobs(status="todo"))
    await jobs.cancel(old.id)
    server.clock.advance(6 * 86400)
    await jobs.cancel(recent.id)
    server.clock.advance(1.5 * 86400)  # the first ended 7.5 days ago, the second 1.5 days ago
    retention = server.services.settings.job_retention_days
    async with server.services.db.transaction() as session:
        assert await admin.delete_old_jobs(session, retention, server.clock.now()) == 1
    assert [job.id for job in await server.jobs()] == [recent.id]


def test_the_migrations_apply_the_installed_procrastinates_newest_schema() -> None:
    newest = sorted(Path(procrastinate.schema.migrations_path).glob("*.sql"))[-1].stem
    assert newest == PROCRASTINATE_SCHEMA, "a procrastinate upgrade needs a migration"

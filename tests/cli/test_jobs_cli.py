"""`imagegate jobs ...` as an operator runs it: a separate process on the server's database,
on either engine."""

from __future__ import annotations

import json

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from cli.test_admin_cli import imagegate
from harness import BACKEND, Server, wait_for


async def test_an_operator_lists_cancels_and_retries_jobs(server: Server) -> None:
    settings = server.services.settings
    account = await server.account(credits=100)
    await server.stop_workers()  # nothing runs: the jobs wait
    created = await server.create(account)
    task_id = created.json()["data"]["taskId"]

    out, _ = await imagegate(settings, "jobs", "list", "--status", "todo", "--json")
    (job,) = json.loads(out)["jobs"]
    assert (job["kind"], job["queue"], job["args"]["task_id"]) == (
        "run_task", "model:ideogram-v4", task_id
    )  # fmt: skip
    # the create's request id (not another request's), for its lines in the logs
    assert job["args"]["request_id"] == created.headers["x-request-id"]
    human, _ = await imagegate(settings, "jobs", "list", "--queue", "model:ideogram-v4")
    assert human.startswith(f"job {job['id']} todo queue=model:ideogram-v4 kind=run_task")

    _, err = await imagegate(settings, "jobs", "retry", str(job["id"]), expect=1)
    assert err.strip() == f"error: job {job['id']} is todo; only failed jobs are retried"
    cancelled, _ = await imagegate(settings, "jobs", "cancel", str(job["id"]), "--json")
    assert json.loads(cancelled)["status"] == "cancelled"
    task = await server.task(account, task_id)
    assert (task["status"], task["error"]["code"]) == ("failed", "internal_error")
    assert await server.ledger(account) == (100, 100)  # the charge was refunded

    _, err = await imagegate(settings, "jobs", "cancel", "999999", expect=1)
    assert err.strip() == "error: not found: no job 999999 (finished jobs are deleted)"
    _, err = await imagegate(settings, "jobs", "list", "--status", "lost", expect=2)
    assert "--status must be one of todo, doing, failed, cancelled" in err


async def test_a_failed_job_retried_by_an_operator_runs_again(server: Server) -> None:
    settings = server.services.settings
    account = await server.account(credits=100)
    await server.stop_workers()
    await server.create(account)
    (job,) = await server.jobs()
    async with server.services.db.transaction() as session:
        await mark_failed(session, job.id)
    (failed,) = await server.jobs(status="failed")

    out, _ = await imagegate(settings, "jobs", "retry", str(job.id), "--json")
    retried = json.loads(out)
    assert (retried["status"], retried["attempts"]) == ("todo", 0)
    for worker in server.services.workers:
        worker.start()

    async def ran() -> bool:
        return await server.jobs() == []  # done: finished jobs are deleted

    await wait_for(ran)
    assert failed.attempts == 5


async def mark_failed(session: AsyncSession, job_id: int) -> None:
    table = "jobs" if BACKEND == "sqlite" else "procrastinate_jobs"
    await session.execute(
        text(f"UPDATE {table} SET status = 'failed', attempts = 5 WHERE id = :id"), {"id": job_id}
    )

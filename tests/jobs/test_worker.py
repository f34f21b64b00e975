"""The job queue: retries, give-up, stalled-job recovery and duplicate runs."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import pytest
from procrastinate import sql
from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncSession

from harness import BACKEND, Server, running_server, wait_for
from imagegate.config import Settings
from imagegate.db.models import Job, Task
from imagegate.jobs import procrastinate_worker
from imagegate.jobs.admin import JobInfo
from imagegate.jobs.table_worker import HOST
from imagegate.providers.base import GeneratedImage, GenerationRequest
from imagegate.tasks.jobs import TaskRunner


class FlakyProvider:
    """Raises an unexpected (non-provider) error ``failures`` times, then makes a tiny image."""

    name = "flaky"

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    async def generate(self, request: GenerationRequest) -> list[GeneratedImage]:
        self.calls += 1
        if self.calls <= self.failures:
            raise RuntimeError("connection reset by peer")
        return [GeneratedImage(b"\x89PNG fake", request.output_format)]


async def claimed_by_a_dead_worker(session: AsyncSession, now: float) -> None:
    """Every waiting job, as if a worker of another machine had claimed it and then died (an
    hour ago, on PostgreSQL, where heartbeats are on the database's clock)."""
    if BACKEND == "sqlite":
        claimed = {"status": "doing", "worker_id": "elsewhere:1:dead", "heartbeat_at": now}
        await session.execute(update(Job).values(**claimed))
        return
    worker = await session.scalar(
        text("INSERT INTO procrastinate_workers DEFAULT VALUES RETURNING id")
    )
    await session.execute(
        text("UPDATE procrastinate_jobs SET status = 'doing', worker_id = :worker"),
        {"worker": worker},
    )


def fast_retries(settings: Settings) -> Settings:
    return settings.model_copy(update={"job_max_attempts": 3})


async def test_a_crashing_handler_is_retried_then_succeeds(settings: Settings) -> None:
    provider = FlakyProvider(failures=1)
    async with running_server(fast_retries(settings), {"ideogram-v4": provider}) as server:
        account = await server.account()
        task_id = (await server.create(account)).json()["data"]["taskId"]
        server.clock.advance(3)  # past the first backoff (2 s)
        task = await server.wait_final(account, task_id)
    assert task["status"] == "completed"
    assert provider.calls == 2


async def test_after_the_last_attempt_the_task_fails_and_is_refunded(settings: Settings) -> None:
    provider = FlakyProvider(failures=99)
    async with running_server(fast_retries(settings), {"ideogram-v4": provider}) as server:
        account = await server.account(credits=28)
        task_id = (await server.create(account)).json()["data"]["taskId"]

        async def final() -> dict[str, Any] | None:
            server.clock.advance(10)  # walk through the backoff schedule
            task = await server.task(account, task_id)
            return task if task["status"] == "failed" else None

        task = await wait_for(final)
        assert task["error"] == {"code": "internal_error", "message": "Image generation failed"}
        assert await server.ledger(account) == (28, 28)

        async def job_failed() -> JobInfo | None:  # the job is settled after give_up
            jobs = await server.jobs()
            return jobs[0] if jobs and jobs[0].status != "doing" else None

        job = await wait_for(job_failed)
        assert (job.status, job.attempts) == ("failed", 3)
        if BACKEND == "sqlite":  # procrastinate keeps no error text (its worker logs it)
            assert "connection reset" in (job.error or "")
    assert provider.calls == 3


async def test_a_stalled_job_is_recovered_and_a_duplicate_run_is_harmless(server: Server) -> None:
    account = await server.account(credits=100)
    # A job another (dead) worker claimed: 'doing', stale heartbeat, task left processing.
    await server.stop_workers()
    task_id = (await server.create(account)).json()["data"]["taskId"]
    async with server.services.db.transaction() as session:
        await claimed_by_a_dead_worker(session, server.clock.now())
        await session.execute(update(Task).values(status="processing"))
    for worker in server.services.workers:
        worker.start()
    server.clock.advance(server.services.settings.job_stall_seconds + 1)
    task = await server.wait_final(account, task_id)
    assert task["status"] == "completed"

    s = server.services
    runner = TaskRunner(s.db, s.queue, s.providers, s.store, s.clock, (0.0,), s.watch)
    await runner.run({"task_id": task_id})  # at-least-once delivery: a second run changes nothing
    assert await server.task(account, task_id) == task
    assert await server.ledger(account) == (72, 72)


class HangingProvider:
    name = "hanging"

    async def generate(self, request: GenerationRequest) -> list[GeneratedImage]:
        await asyncio.Event().wait()  # an upstream that never answers
        raise AssertionError("unreachable")


async def test_a_provider_that_never_answers_fails_the_task_after_the_job_timeout(
    settings: Settings,
) -> None:
    limited = settings.model_copy(update={"job_timeout": 0.3, "job_max_attempts": 2})
    async with running_server(limited, {"ideogram-v4": HangingProvider()}) as server:
        account = await server.account(credits=28)
        task_id = (await server.create(account)).json()["data"]["taskId"]

        async def failed() -> dict[str, Any] | None:
            server.clock.advance(5)  # past the retry backoff
            task = await server.task(account, task_id)
            return task if task["status"] == "failed" else None

        task = await wait_for(failed)
    assert task["error"]["code"] == "internal_error"
    assert await server.ledger(account) == (28, 28)


async def test_a_job_kind_this_worker_does_not_know_is_kept_for_one_that_does(
    server: Server,
) -> None:
    now = server.clock.now()
    async with server.services.db.transaction() as session:
        await server.services.queue.defer(
            session, "from_a_newer_release", {}, queue="model:ideogram-v4"
        )

    async def settled() -> JobInfo | None:
        jobs = await server.jobs()
        return jobs[0] if jobs and (jobs[0].error or jobs[0].status == "failed") else None

    job = await wait_for(settled)
    if BACKEND == "sqlite":  # handed back for a newer worker, not counted as an attempt
        assert (job.status, job.attempts) == ("todo", 0)
        assert job.due_at is not None
        assert job.due_at >= now + 59
    else:  # procrastinate fails it; an operator retries it once a newer worker runs
        assert job.status == "failed"
        assert (await server.jobs(status="failed")) == [job]


async def test_a_freed_slot_wakes_the_worker_without_waiting_for_a_poll(
    settings: Settings,
) -> None:
    # One slot and a poll every 60 s: the second task can only start in time if the end of the
    # first wakes the worker (its job was committed while the only slot was taken).
    slow_polls = settings.model_copy(update={"worker_concurrency": 1, "worker_poll_interval": 60})
    async with running_server(slow_polls) as server:
        account = await server.account()
        created = [await server.create(account) for _ in range(3)]
        for response in created:
            task_id = response.json()["data"]["taskId"]
            assert (await server.wait_final(account, task_id, within=15))["status"] == "completed"


@pytest.mark.skipif(BACKEND != "postgres", reason="procrastinate's worker (PostgreSQL)")
async def test_a_job_deferred_while_a_fetch_runs_starts_without_waiting_for_a_poll(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second task is created while the worker's fetch, which found nothing, is on its way
    back: too late for that fetch, its notice arrives before the fetch ends. With a poll every
    60 s it can only start in time if the worker looks again."""
    slow_polls = settings.model_copy(update={"worker_poll_interval": 60})
    # Nor does the stall recovery's periodic job, deferred every 5 s, wake the task pool.
    monkeypatch.setattr(procrastinate_worker, "RECOVER_EVERY", "0 0 1 1 *")
    async with running_server(slow_polls) as server:
        account = await server.account()
        assert server.services.procrastinate is not None
        manager = server.services.procrastinate.app.job_manager
        connector = manager.connector
        fetch = sql.queries["fetch_job"]
        original = connector.execute_query_one_async
        second: list[str] = []

        async def racing(query: str, **arguments: Any) -> Any:
            row = await original(query, **arguments)
            tasks_pool = query == fetch and "tasks" in arguments["queues"]
            if tasks_pool and row["id"] is None and not second:  # meanwhile, a task is created
                notices = sum(manager._notices.values())  # type: ignore[attr-defined]
                second.append((await server.create(account)).json()["data"]["taskId"])
                await wait_for(lambda: _more(manager, notices))  # its notice has come
            return row

        monkeypatch.setattr(connector, "execute_query_one_async", racing)
        first = (await server.create(account)).json()["data"]["taskId"]
        assert (await server.wait_final(account, first, within=15))["status"] == "completed"
        await wait_for(lambda: _listed(second))
        assert (await server.wait_final(account, second[0], within=15))["status"] == "completed"


async def _more(manager: Any, notices: int) -> bool:
    return bool(sum(manager._notices.values()) > notices)


async def _listed(items: list[str]) -> bool:
    return bool(items)


@pytest.mark.skipif(BACKEND != "sqlite", reason="embedded mode's table queue")
async def test_jobs_of_a_stopped_process_of_this_host_are_taken_back_at_once(
    server: Server,
) -> None:
    account = await server.account(credits=100)
    await server.stop_workers()
    task_id = (await server.create(account)).json()["data"]["taskId"]
    # a process id that no longer runs
    gone = await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")
    await gone.wait()
    async with server.services.db.transaction() as session:
        claimed = {"status": "doing", "worker_id": f"{HOST}:{gone.pid}:x"}
        await session.execute(update(Job).values(heartbeat_at=server.clock.now(), **claimed))
        await session.execute(update(Task).values(status="processing"))
    for worker in server.services.workers:
        worker.start()  # a restart: no heartbeat has gone stale, no clock moves
    assert (await server.wait_final(account, task_id, within=5))["status"] == "completed"
    assert await server.ledger(account) == (72, 72)

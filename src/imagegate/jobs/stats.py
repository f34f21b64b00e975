"""Read-only numbers about the job queue, for the operator's console: how much waits and runs
in each queue, how old the oldest waiting job is, and the jobs that failed for good.

Plain aggregate queries on the ``jobs`` table (the same on SQLite and PostgreSQL); finished
jobs are deleted by the worker, so the table holds only todo, doing and failed ones.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from imagegate.db.models import Job
from imagegate.jobs.status import JobStatus


@dataclass(frozen=True)
class QueueDepth:
    queue: str
    waiting: int  # todo: due now or scheduled for later (retries, callback attempts)
    due: int  # of those, runnable now
    running: int  # doing: claimed by a worker
    oldest_waiting_at: float | None  # created_at of the oldest waiting job


@dataclass(frozen=True)
class FailedJob:
    id: int
    kind: str
    queue: str
    attempts: int
    last_error: str
    last_run_at: float  # the last attempt's start (its heartbeat), else when it was due


async def queue_depths(session: AsyncSession, now: float) -> list[QueueDepth]:
    """Per queue (those with jobs waiting or running), by name."""
    todo = Job.status == JobStatus.TODO
    rows = await session.execute(
        select(
            Job.queue,
            func.sum(case((todo, 1), else_=0)),
            func.sum(case((todo & (Job.run_at <= now), 1), else_=0)),
            func.sum(case((Job.status == JobStatus.DOING, 1), else_=0)),
            func.min(case((todo, Job.created_at), else_=None)),
        )
        .where(Job.status.in_((JobStatus.TODO, JobStatus.DOING)))
        .group_by(Job.queue)
        .order_by(Job.queue)
    )
    return [
        QueueDepth(queue, int(waiting or 0), int(due or 0), int(running or 0), oldest)
        for queue, waiting, due, running, oldest in rows
    ]


async def failed_jobs(session: AsyncSession, limit: int = 20) -> list[FailedJob]:
    """The most recently created jobs that failed for good (their tasks were failed and
    refunded by the job's give-up step), newest first."""
    rows = await session.scalars(
        select(Job).where(Job.status == JobStatus.FAILED).order_by(Job.id.desc()).limit(limit)
    )
    return [
        FailedJob(
            job.id,
            job.kind,
            job.queue,
            job.attempts,
            job.last_error or "",
            job.heartbeat_at if job.heartbeat_at is not None else job.run_at,
        )
        for job in rows
    ]


async def failed_count(session: AsyncSession) -> int:
    """How many failed jobs the table holds."""
    count = await session.scalar(
        select(func.count()).select_from(Job).where(Job.status == JobStatus.FAILED)
    )
    return int(count or 0)

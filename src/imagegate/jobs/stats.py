"""Read-only numbers about the job queue, for the operator's console: how much waits and runs
in each queue, how old the oldest waiting job is, and the jobs that failed for good.

Plain aggregate queries on each engine's table: ``jobs`` (SQLite) or procrastinate's
``procrastinate_jobs`` and its events (PostgreSQL). Finished jobs are deleted by the workers,
so either holds only waiting, running, failed and cancelled ones.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


@dataclass(frozen=True)
class QueueDepth:
    queue: str
    waiting: int  # todo: due now or scheduled for later (retries, callback attempts)
    due: int  # of those, runnable now
    running: int  # doing: claimed by a worker
    oldest_waiting_at: float | None  # when the oldest waiting job was added


@dataclass(frozen=True)
class FailedJob:
    id: int
    kind: str
    queue: str
    attempts: int
    last_error: str
    last_run_at: float  # the last attempt's start, else when it was due


_DEPTHS = {
    "sqlite": """
SELECT queue, sum(status = 'todo'), sum(status = 'todo' AND run_at <= :now),
       sum(status = 'doing'), min(CASE WHEN status = 'todo' THEN created_at END)
  FROM jobs WHERE status IN ('todo', 'doing') GROUP BY queue ORDER BY queue""",
    "postgresql": """
SELECT queue_name, count(*) FILTER (WHERE status = 'todo'),
       count(*) FILTER (WHERE status = 'todo' AND coalesce(scheduled_at <= now(), true)),
       count(*) FILTER (WHERE status = 'doing'),
       extract(epoch FROM min(added.at) FILTER (WHERE status = 'todo'))::float
  FROM procrastinate_jobs job
  LEFT JOIN procrastinate_events added ON added.job_id = job.id AND added.type = 'deferred'
 WHERE status IN ('todo', 'doing') GROUP BY queue_name ORDER BY queue_name""",
}
_FAILED = {
    "sqlite": """
SELECT id, kind, queue, attempts, coalesce(last_error, ''), coalesce(heartbeat_at, run_at)
  FROM jobs WHERE status = 'failed' ORDER BY id DESC LIMIT :limit""",
    "postgresql": """
SELECT id, task_name, queue_name, attempts,
       coalesce((SELECT error FROM job_errors WHERE job_id = job.id), ''),
       extract(epoch FROM coalesce((SELECT max(at) FROM procrastinate_events
         WHERE job_id = job.id AND type = 'started'), scheduled_at, now()))::float
  FROM procrastinate_jobs job WHERE status = 'failed' ORDER BY id DESC LIMIT :limit""",
}
_FAILED_COUNT = {
    "sqlite": "SELECT count(*) FROM jobs WHERE status = 'failed'",
    "postgresql": "SELECT count(*) FROM procrastinate_jobs WHERE status = 'failed'",
}


def _dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


async def queue_depths(session: AsyncSession, now: float) -> list[QueueDepth]:
    """Per queue (those with jobs waiting or running), by name."""
    rows = await session.execute(text(_DEPTHS[_dialect(session)]), {"now": now})
    return [
        QueueDepth(queue, int(waiting or 0), int(due or 0), int(running or 0), oldest)
        for queue, waiting, due, running, oldest in rows
    ]


async def failed_jobs(session: AsyncSession, limit: int = 20) -> list[FailedJob]:
    """The most recent jobs that failed for good (their tasks were failed and refunded by the
    job's give-up step), newest first."""
    rows = await session.execute(text(_FAILED[_dialect(session)]), {"limit": limit})
    return [FailedJob(*row) for row in rows]


async def failed_count(session: AsyncSession) -> int:
    """How many failed jobs are kept (`imagegate jobs retry` runs one again)."""
    return int(await session.scalar(text(_FAILED_COUNT[_dialect(session)])) or 0)

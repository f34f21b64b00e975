"""What operators do with jobs, on either engine: list them, retry a failed one, cancel a waiting
one (`imagegate jobs ...`), and delete old finished ones.

Cancelling runs the kind's give_up, as a last failed attempt would: a task whose job is
cancelled fails with internal_error and is refunded, a callback is marked failed; nothing waits
forever. A retried job starts again with its attempts counted from zero.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from imagegate.clock import Clock
from imagegate.db.database import Database
from imagegate.db.sql import from_json
from imagegate.jobs.kinds import JobKind

CANCELLED_MESSAGE = "cancelled by an operator"
STATUSES = ("todo", "doing", "failed", "cancelled")  # finished jobs are deleted at once


class JobNotFound(LookupError):
    pass


class JobStateError(ValueError):
    """The job is not in a state that allows the operation (the message says which)."""


@dataclass(frozen=True)
class JobInfo:
    id: int
    queue: str
    kind: str
    status: str
    attempts: int
    due_at: float | None  # when a waiting job may run (None: now)
    args: dict[str, Any]
    error: str | None  # the last failed attempt's error

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


_COLUMNS = {
    "sqlite": "id, queue, kind, status, attempts, run_at, args, last_error FROM jobs",
    # procrastinate counts an attempt when it ends; count the one running too
    "postgresql": "id, queue_name, task_name, status::text,"
    " attempts + CASE WHEN status = 'doing' THEN 1 ELSE 0 END,"
    " extract(epoch FROM scheduled_at)::float, args,"
    " (SELECT error FROM job_errors WHERE job_id = procrastinate_jobs.id) FROM procrastinate_jobs",
}
_WHERE = {
    "sqlite": "(:status IS NULL OR status = :status) AND (:queue IS NULL OR queue = :queue)",
    "postgresql": "(CAST(:status AS text) IS NULL OR status::text = :status)"
    " AND (CAST(:queue AS text) IS NULL OR queue_name = :queue)",
}
_RETRY = {
    "sqlite": [
        "UPDATE jobs SET status = 'todo', attempts = 0, run_at = :now, worker_id = NULL"
        " WHERE id = :id"
    ],
    # procrastinate's own retry (failed -> todo, due now by the database's clock), then a fresh
    # count of attempts.
    "postgresql": [
        "SELECT procrastinate_retry_job_v2(:id, now(), NULL, NULL, NULL)",
        "UPDATE procrastinate_jobs SET attempts = 0 WHERE id = :id",
    ],
}
_CANCEL = {
    "sqlite": "UPDATE jobs SET status = 'cancelled', finished_at = :now"
    " WHERE id = :id AND status = 'todo' RETURNING id",
    "postgresql": "SELECT procrastinate_cancel_job_v1(:id, false, false)",
}
_DELETE_OLD = {
    "sqlite": "DELETE FROM jobs WHERE status IN ('failed', 'cancelled')"
    " AND coalesce(finished_at, heartbeat_at, run_at) < :before",
    # ended: its last event (failed, cancelled, ...) is older than the retention, by the
    # database's clock
    "postgresql": "DELETE FROM procrastinate_jobs WHERE status NOT IN ('todo', 'doing')"
    " AND id IN (SELECT job_id FROM procrastinate_events GROUP BY job_id"
    " HAVING max(at) < now() - make_interval(secs => :seconds))",
}


class JobAdmin:
    def __init__(self, db: Database, kinds: dict[str, JobKind], clock: Clock) -> None:
        self.db, self.kinds, self.clock = db, kinds, clock
        self.dialect = "sqlite" if db.is_sqlite else "postgresql"

    async def list(
        self, status: str | None = None, queue: str | None = None, limit: int = 100
    ) -> list[JobInfo]:
        """Jobs that wait, run, failed or were cancelled, newest first."""
        async with self.db.sessions() as session:
            return await list_jobs(session, status, queue, limit)

    async def retry(self, job_id: int) -> JobInfo:
        """A failed job runs again, now."""
        async with self.db.transaction() as session:
            found = await self._one(session, job_id, lock=True)
            if found.status != "failed":
                raise JobStateError(f"job {job_id} is {found.status}; only failed jobs are retried")
            for sql in _RETRY[self.dialect]:
                await session.execute(text(sql), {"id": job_id, "now": self.clock.now()})
            return await self._one(session, job_id)

    async def cancel(self, job_id: int) -> JobInfo:
        """A waiting job will not run; its kind's give_up runs instead."""
        async with self.db.transaction() as session:
            found = await self._one(session, job_id)
            params = {"id": job_id, "now": self.clock.now()}
            row = (await session.execute(text(_CANCEL[self.dialect]), params)).first()
            if row is None or row[0] is None:
                raise JobStateError(
                    f"job {job_id} is {found.status}; only waiting (todo) jobs are cancelled"
                )
        kind = self.kinds.get(found.kind)
        if kind is not None and kind.give_up is not None:
            await kind.give_up(found.args, CANCELLED_MESSAGE)
        async with self.db.sessions() as session:
            return await self._one(session, job_id)

    async def _one(self, session: AsyncSession, job_id: int, lock: bool = False) -> JobInfo:
        sql = f"SELECT {_COLUMNS[self.dialect]} WHERE id = :id"
        if lock and self.dialect == "postgresql":
            sql += " FOR UPDATE"
        row = (await session.execute(text(sql), {"id": job_id})).first()
        if row is None:
            raise JobNotFound(f"no job {job_id} (finished jobs are deleted)")
        return _info(row)


async def list_jobs(
    session: AsyncSession, status: str | None = None, queue: str | None = None, limit: int = 100
) -> list[JobInfo]:
    """The jobs ``session`` sees (its own uncommitted ones too), newest first."""
    dialect = session.get_bind().dialect.name
    sql = f"SELECT {_COLUMNS[dialect]} WHERE {_WHERE[dialect]} ORDER BY id DESC LIMIT :limit"
    rows = await session.execute(text(sql), {"status": status, "queue": queue, "limit": limit})
    return [_info(row) for row in rows]


async def delete_old_jobs(session: AsyncSession, days: float, now: float) -> int:
    """Retention: jobs that ended (failed, cancelled) more than ``days`` ago are deleted (the
    table worker's maintenance loop and procrastinate's periodic task call this hourly)."""
    sql = _DELETE_OLD[session.get_bind().dialect.name]
    params = {"before": now - days * 86400, "seconds": days * 86400}
    result = await session.execute(text(sql), params)
    return int(result.rowcount)  # type: ignore[attr-defined]


# Other retention rules that run with the jobs' (each deletes what outlived its time).
Cleanup = Callable[[AsyncSession, float], Awaitable[object]]


async def retention(
    session: AsyncSession, days: float, now: float, cleanups: Sequence[Cleanup] = ()
) -> None:
    """The hourly housekeeping of either engine: old jobs, then ``cleanups``."""
    await delete_old_jobs(session, days, now)
    for cleanup in cleanups:
        await cleanup(session, now)


def _info(row: Any) -> JobInfo:
    id_, queue, kind, status, attempts, due_at, args, error = row
    return JobInfo(int(id_), queue, kind, status, int(attempts), due_at, from_json(args), error)

"""The SQL of adding a job, inside the caller's transaction, for each engine.

SQLite: a row in our ``jobs`` table (jobs/table_worker.py runs it). PostgreSQL: procrastinate's
versioned defer function, so the job commits or rolls back with the caller's rows; its trigger
sends the NOTIFY that wakes workers, and the due time is counted on the database's clock.
"""

from __future__ import annotations

from typing import Any

from imagegate.db.sql import Tx, to_json
from imagegate.jobs.status import JobStatus

_INSERT = (
    "INSERT INTO jobs (queue, kind, args, status, run_at, attempts, created_at)"
    f" VALUES (:queue, :kind, :args, '{JobStatus.TODO}', :run_at, 0, :created_at)"
)

# lock: one job of a lock runs at a time; queueing_lock (the same): one waits at a time.
# A NULL delay leaves scheduled_at NULL: due now (and no 'scheduled' event row is written).
_DEFER = (
    "SELECT procrastinate_defer_jobs_v1(ARRAY[CAST(ROW(:queue, :kind, 0, :lock, :lock,"
    " CAST(:args AS jsonb), now() + make_interval(secs => :delay))"
    " AS procrastinate_job_to_defer_v1)])"
)


async def insert(
    tx: Tx,
    queue: str,
    kind: str,
    args: dict[str, Any],
    run_at: float,
    now: float,
    lock: str | None = None,
) -> None:
    params = {"queue": queue, "kind": kind, "args": to_json(args)}
    if tx.dialect == "postgresql":
        delay = run_at - now if run_at > now else None
        await tx.run(_DEFER, {**params, "lock": lock, "delay": delay})
    else:
        await tx.run(_INSERT, {**params, "run_at": run_at, "created_at": now})

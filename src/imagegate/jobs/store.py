"""The SQL of adding a job, inside the caller's transaction, for each engine; and the table
worker's claim and finish (SQLite).

SQLite: a row in our ``jobs`` table (jobs/table_worker.py runs it). PostgreSQL: procrastinate's
versioned defer function, so the job commits or rolls back with the caller's rows; its trigger
sends the NOTIFY that wakes workers, and the due time is counted on the database's clock.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from imagegate.db.sql import Tx, from_json, to_json
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


# The table worker's claim (SQLite; its writer is alone, so no row locks are needed): the due
# jobs of its queues, oldest first, marked as its own in the statement that picks them.
_CLAIM = (
    f"UPDATE jobs SET status = '{JobStatus.DOING}', worker_id = :worker, heartbeat_at = :now,"
    " attempts = attempts + 1 WHERE id IN (SELECT id FROM jobs"
    f" WHERE status = '{JobStatus.TODO}' AND run_at <= :now{{mine}}"
    " ORDER BY run_at, id LIMIT :limit) RETURNING id, kind, args, attempts, run_at"
)

_DELETE_OWN = "DELETE FROM jobs WHERE id = :id AND worker_id = :worker"


@cache
def _claim_statement(queues: tuple[str, ...] | None, excluded: tuple[str, ...]) -> str:
    mine = ""
    if queues is not None:
        mine += " AND queue IN (" + ", ".join(f":q{n}" for n in range(len(queues))) + ")"
    if excluded:
        mine += " AND queue NOT IN (" + ", ".join(f":x{n}" for n in range(len(excluded))) + ")"
    return _CLAIM.format(mine=mine)


async def claim(
    tx: Tx,
    worker: str,
    now: float,
    limit: int,
    queues: tuple[str, ...] | None,
    excluded: tuple[str, ...],
) -> list[tuple[int, str, dict[str, Any], int]]:
    """Up to ``limit`` due jobs of ``queues`` (None: all) but not of ``excluded``, now
    ``worker``'s: (id, kind, args, attempt number), oldest due first."""
    params: dict[str, Any] = {"worker": worker, "now": now, "limit": limit}
    params |= {f"q{n}": name for n, name in enumerate(queues or ())}
    params |= {f"x{n}": name for n, name in enumerate(excluded)}
    rows = await tx.all(_claim_statement(queues, excluded), params)
    rows.sort(key=lambda row: (row[4], row[0]))
    return [(job_id, kind, from_json(args), tries) for job_id, kind, args, tries, _ in rows]


async def delete_own(tx: Tx, job_id: int, worker: str) -> None:
    """A finished job goes, unless another worker has taken it back meanwhile."""
    await tx.run(_DELETE_OWN, {"id": job_id, "worker": worker})

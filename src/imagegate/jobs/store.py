"""The SQL of adding a job, inside the caller's transaction, for each engine; and the table
worker's claim and bookkeeping (SQLite).

SQLite: a row in our ``jobs`` table (jobs/table_worker.py runs it). PostgreSQL: procrastinate's
versioned defer function, so the job commits or rolls back with the caller's rows; its trigger
sends the NOTIFY that wakes workers, and the due time is counted on the database's clock.
"""

from __future__ import annotations

from dataclasses import dataclass
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
_DEFER_CALL = (
    "procrastinate_defer_jobs_v1(ARRAY[CAST(ROW(:queue, :kind, 0, :lock, :lock,"
    " CAST(:args AS jsonb), now() + make_interval(secs => :delay))"
    " AS procrastinate_job_to_defer_v1)])"
)
_DEFER = f"SELECT {_DEFER_CALL}"


@dataclass(frozen=True)
class NewJob:
    """A job to add (jobs/queue.py's defer): runnable at ``run_at``, added at ``now``; jobs with
    the same ``lock`` never run at once, and only one of them waits at a time (PostgreSQL)."""

    queue: str
    kind: str
    args: dict[str, Any]
    run_at: float
    now: float
    lock: str | None = None

    def params(self) -> dict[str, Any]:
        """Its parameters in procrastinate's defer call (_DEFER_CALL)."""
        delay = self.run_at - self.now if self.run_at > self.now else None
        return {"queue": self.queue, "kind": self.kind, "args": to_json(self.args),
                "lock": self.lock, "delay": delay}  # fmt: skip


async def insert(tx: Tx, job: NewJob) -> None:
    if tx.dialect == "postgresql":
        await tx.run(_DEFER, job.params())
    else:
        params = {"queue": job.queue, "kind": job.kind, "args": to_json(job.args)}
        await tx.run(_INSERT, params | {"run_at": job.run_at, "created_at": job.now})


def deferring(source: str, job: NewJob) -> tuple[str, dict[str, Any]]:
    """PostgreSQL: insert()'s job as part of a bigger statement: a scalar subquery that defers
    it once when ``source`` (a WITH query of that statement) has a row; and its parameters."""
    return f"(SELECT {_DEFER_CALL} FROM {source})", job.params()


# PostgreSQL: one job per row of a WITH query, due now, from its columns EACH_JOB (each job's
# queue, its lock, also its queueing lock, and its arguments as JSON text): one call of the
# defer function for all of them.
EACH_JOB = {"job_queue": "text", "job_lock": "text", "job_args": "text"}
_DEFER_EACH = (
    "(SELECT procrastinate_defer_jobs_v1(ARRAY(SELECT CAST(ROW(job_queue, :kind, 0, job_lock,"
    " job_lock, CAST(job_args AS jsonb), NULL) AS procrastinate_job_to_defer_v1) FROM {source})))"
)


def each_job(job: NewJob) -> dict[str, Any]:
    """A job's EACH_JOB columns (one due now: deferring_each defers no later job)."""
    assert job.run_at <= job.now, job
    return {"job_queue": job.queue, "job_lock": job.lock, "job_args": to_json(job.args)}


def deferring_each(source: str, kind: str) -> tuple[str, dict[str, Any]]:
    """PostgreSQL: a scalar subquery of a bigger statement that defers a job of ``kind`` for
    each row of ``source`` (a WITH query with the columns EACH_JOB, see each_job); and its
    parameters."""
    return _DEFER_EACH.format(source=source), {"kind": kind}


# The table worker's claim (SQLite; its writer is alone, so no row locks are needed): the due
# jobs of its queues, oldest first, marked as its own in the statement that picks them.
_CLAIM = (
    f"UPDATE jobs SET status = '{JobStatus.DOING}', worker_id = :worker, heartbeat_at = :now,"
    " attempts = attempts + 1 WHERE id IN (SELECT id FROM jobs"
    f" WHERE status = '{JobStatus.TODO}' AND run_at <= :now{{mine}}"
    " ORDER BY run_at, id LIMIT :limit) RETURNING id, kind, args, attempts, run_at"
)

# The table worker's bookkeeping. A list of ids or owners travels as one JSON parameter.
_IN_LIST = "(SELECT value FROM json_each(:list))"
_BEAT = f"UPDATE jobs SET heartbeat_at = :now WHERE worker_id = :worker AND id IN {_IN_LIST}"
# Stalled: doing, with an old heartbeat, and not running in the worker that looks (a dead
# worker's job, or the looking worker's own when its bookkeeping failed).
_RECOVER = (
    f"UPDATE jobs SET status = '{JobStatus.TODO}', worker_id = NULL"
    f" WHERE status = '{JobStatus.DOING}' AND id NOT IN {_IN_LIST}"
    " AND heartbeat_at < :before{mine} RETURNING id"
)
_OWNERS = (
    f"SELECT DISTINCT worker_id FROM jobs WHERE status = '{JobStatus.DOING}'"
    " AND worker_id LIKE :owners{mine}"
)
_TAKE_BACK = (
    f"UPDATE jobs SET status = '{JobStatus.TODO}', worker_id = NULL"
    f" WHERE status = '{JobStatus.DOING}' AND worker_id IN {_IN_LIST} RETURNING id"
)
# Handed back by a stopping worker: not counted as an attempt.
_RELEASE = (
    f"UPDATE jobs SET status = '{JobStatus.TODO}', worker_id = NULL, attempts = attempts - 1"
    f" WHERE worker_id = :worker AND status = '{JobStatus.DOING}' AND id IN {_IN_LIST}"
)
_SETTLE = (
    "UPDATE jobs SET status = :status, run_at = COALESCE(:run_at, run_at), last_error = :error,"
    " finished_at = :finished_at, attempts = attempts - :undone, worker_id = NULL"
    " WHERE id = :id AND worker_id = :worker"
)
_DELETE_OWN = "DELETE FROM jobs WHERE id = :id AND worker_id = :worker"


@cache
def _mine(statement: str, queues: tuple[str, ...] | None, excluded: tuple[str, ...]) -> str:
    """``statement`` limited to the jobs of ``queues`` (None: all) but not of ``excluded``."""
    mine = ""
    if queues is not None:
        mine += " AND queue IN (" + ", ".join(f":q{n}" for n in range(len(queues))) + ")"
    if excluded:
        mine += " AND queue NOT IN (" + ", ".join(f":x{n}" for n in range(len(excluded))) + ")"
    return statement.format(mine=mine)


def _queue_params(queues: tuple[str, ...] | None, excluded: tuple[str, ...]) -> dict[str, str]:
    return {f"q{n}": name for n, name in enumerate(queues or ())} | {
        f"x{n}": name for n, name in enumerate(excluded)
    }


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
    rows = await tx.all(_mine(_CLAIM, queues, excluded), params | _queue_params(queues, excluded))
    rows.sort(key=lambda row: (row[4], row[0]))
    return [(job_id, kind, from_json(args), tries) for job_id, kind, args, tries, _ in rows]


async def delete_own(tx: Tx, job_id: int, worker: str) -> None:
    """A finished job goes, unless another worker has taken it back meanwhile."""
    await tx.run(_DELETE_OWN, {"id": job_id, "worker": worker})


async def settle(
    tx: Tx,
    job_id: int,
    worker: str,
    status: str,
    error: str,
    *,
    run_at: float | None = None,
    finished_at: float | None = None,
    undone: bool = False,
) -> None:
    """An attempt's end other than success: the job is ``status`` (todo again from ``run_at``,
    or failed at ``finished_at``), with ``error``; ``undone``: the attempt does not count.
    Nothing changes when another worker has taken the job back meanwhile."""
    await tx.run(
        _SETTLE,
        {"id": job_id, "worker": worker, "status": status, "error": error, "run_at": run_at,
         "finished_at": finished_at, "undone": int(undone)},
    )  # fmt: skip


async def heartbeat(tx: Tx, worker: str, job_ids: list[int], now: float) -> None:
    """``worker``'s jobs ``job_ids`` are alive at ``now``."""
    await tx.run(_BEAT, {"worker": worker, "list": to_json(job_ids), "now": now})


async def recover_stalled(
    tx: Tx,
    running: list[int],
    before: float,
    queues: tuple[str, ...] | None,
    excluded: tuple[str, ...],
) -> int:
    """Jobs of the queues whose heartbeat is older than ``before`` and that are not among
    ``running``: todo again. Returns how many."""
    params = {"list": to_json(running), "before": before} | _queue_params(queues, excluded)
    return len(await tx.all(_mine(_RECOVER, queues, excluded), params))


async def owners(
    tx: Tx, prefix: str, queues: tuple[str, ...] | None, excluded: tuple[str, ...]
) -> list[str]:
    """The workers whose ids start with ``prefix`` that hold jobs of the queues."""
    params = {"owners": prefix + "%"} | _queue_params(queues, excluded)
    return [row[0] for row in await tx.all(_mine(_OWNERS, queues, excluded), params)]


async def take_back(tx: Tx, owners: list[str]) -> int:
    """The jobs that ``owners`` hold: todo again. Returns how many."""
    return len(await tx.all(_TAKE_BACK, {"list": to_json(owners)}))


async def release(tx: Tx, worker: str, job_ids: list[int]) -> None:
    """``worker``'s jobs ``job_ids`` go back, their attempts not counted."""
    await tx.run(_RELEASE, {"worker": worker, "list": to_json(job_ids)})

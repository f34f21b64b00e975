"""The SQL of the job table on the request path: adding a job."""

from __future__ import annotations

from typing import Any

from imagegate.db.sql import Tx, to_json
from imagegate.jobs.status import JobStatus

_INSERT = (
    "INSERT INTO jobs (queue, kind, args, status, run_at, attempts, created_at)"
    f" VALUES (:queue, :kind, :args, '{JobStatus.TODO}', :run_at, 0, :created_at)"
)


# PostgreSQL: tell listening workers of every process, once the transaction commits
# (jobs/notify.py); notifications of one transaction with the same payload are sent once.
_NOTIFY = "SELECT pg_notify('imagegate_jobs', :queue)"


async def insert(
    tx: Tx, queue: str, kind: str, args: dict[str, Any], run_at: float, now: float
) -> None:
    params = {"queue": queue, "kind": kind, "args": to_json(args), "run_at": run_at}
    await tx.run(_INSERT, {**params, "created_at": now})
    if tx.dialect == "postgresql" and run_at <= now:
        await tx.run(_NOTIFY, {"queue": queue})

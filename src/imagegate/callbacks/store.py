"""The SQL of callbacks: planning one when its task ends (in the transaction that ends it), and
a delivery's reads and writes (callbacks/jobs.py)."""

from __future__ import annotations

from dataclasses import dataclass

from imagegate.db.sql import Tx
from imagegate.tasks.store import VIEW_COLUMNS, TaskView, view

_COLUMNS = "task_id, url, event, status, next_attempt_at, created_at"
_INSERT = (
    f"INSERT INTO callbacks ({_COLUMNS}) VALUES (:task_id, :url, :event, 'pending', :first, :now)"
)
EVENT_PREFIX = "task."  # a callback's event: task.completed or task.failed


def inserting(source: str) -> str:
    """PostgreSQL: insert() as a WITH query of a bigger statement: a pending callback for the
    task that ``source`` (id, callback_url, status) holds, when it has a callback_url."""
    return (
        f"INSERT INTO callbacks ({_COLUMNS}) SELECT id, callback_url, '{EVENT_PREFIX}' || status,"
        f" 'pending', :first, :now FROM {source} WHERE callback_url IS NOT NULL RETURNING task_id"
    )


# What a delivery needs, in one statement: the callback, whether this attempt was made already
# (a repeated job), the account's signing secret and the task as the API shows it.
_DUE = (
    "SELECT c.url, c.event, c.status, a.webhook_secret, t.account_id,"
    " EXISTS (SELECT 1 FROM callback_attempts x WHERE x.task_id = c.task_id"
    f" AND x.number = :number), {VIEW_COLUMNS}"
    " FROM callbacks c JOIN tasks t ON t.id = c.task_id JOIN accounts a ON a.id = t.account_id"
    " WHERE c.task_id = :task_id"
)

# The callback's row first: on PostgreSQL its lock makes a repeated attempt wait, then fail on
# the unique (task_id, number) index below, with nothing written.
_MOVE = "UPDATE callbacks SET status = :status, next_attempt_at = :next WHERE task_id = :task_id"

_ATTEMPT = (
    "INSERT INTO callback_attempts"
    " (task_id, number, attempted_at, status_code, error, next_attempt_at)"
    " VALUES (:task_id, :number, :attempted_at, :status_code, :error, :next)"
)


@dataclass(frozen=True)
class Due:
    """A callback as its delivery sees it."""

    url: str
    event: str
    status: str
    secret: str | None  # None until the account's first signed message makes one
    account_id: str
    attempted: bool  # this attempt's number is recorded already
    task: TaskView


@dataclass(frozen=True)
class Attempt:
    task_id: str
    number: int
    attempted_at: float
    status_code: int | None
    error: str | None


async def insert(tx: Tx, task_id: str, url: str, event: str, first: float, now: float) -> None:
    """A pending callback of ``task_id``, its first attempt due at ``first``."""
    params = {"task_id": task_id, "url": url, "event": event, "first": first, "now": now}
    await tx.run(_INSERT, params)


async def due(tx: Tx, task_id: str, number: int) -> Due | None:
    """The callback of ``task_id`` for attempt ``number``, or None when there is none."""
    row = await tx.one(_DUE, {"task_id": task_id, "number": number})
    if row is None:
        return None
    url, event, status, secret, account_id, attempted, *task = row
    shown = view(tuple(task))
    assert shown is not None  # the join found the task
    return Due(url, event, status, secret, account_id, bool(attempted), shown)


async def record(tx: Tx, attempt: Attempt, status: str, next_at: float | None) -> None:
    """Store ``attempt``; the callback is now ``status``, its next attempt due at ``next_at``.
    Raises the database's IntegrityError when that attempt is recorded already."""
    params = {"task_id": attempt.task_id, "status": status, "next": next_at}
    await tx.run(_MOVE, params)
    await tx.run(
        _ATTEMPT,
        {**params, "number": attempt.number, "attempted_at": attempt.attempted_at,
         "status_code": attempt.status_code, "error": attempt.error},
    )  # fmt: skip

"""Reading an account's tasks: the console's pages and GET /v1/tasks (keyset pages, newest
first), a task with its refund and callback log."""

from __future__ import annotations

import base64
import binascii
import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Select, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from imagegate.callbacks import service as callbacks
from imagegate.db.models import Callback, CallbackAttempt, LedgerEntry, Task
from imagegate.tasks.service import get_task
from imagegate.tasks.status import IN_FLIGHT, TaskStatus

TASK_STATUSES = tuple(TaskStatus)
MAX_PAGE = 100


@dataclass(frozen=True)
class TaskFilter:
    """Which of an account's tasks to list; None means any. Times are Unix seconds:
    ``created_from`` inclusive, ``created_before`` exclusive."""

    status: str | None = None
    key_id: str | None = None
    created_from: float | None = None
    created_before: float | None = None


@dataclass(frozen=True)
class TaskPage:
    """Tasks newest first. ``next_cursor`` opens the older tasks after these and
    ``newer_cursor`` the newer ones before them; None where there are none to show."""

    tasks: list[Task]
    next_cursor: str | None
    newer_cursor: str | None


@dataclass(frozen=True)
class _Position:
    """Where a page starts: just older ("o") or just newer ("n") than the task at
    (created_at, task_id) in the order (created_at DESC, id DESC)."""

    direction: str
    created_at: float
    task_id: str


def _encode_cursor(direction: str, task: Task) -> str:
    raw = f"{direction}:{task.created_at!r}:{task.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> _Position:
    """The position a cursor names, or ValueError for anything that is not one of ours."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        direction, created_at, task_id = (
            base64.urlsafe_b64decode(padded.encode("ascii")).decode().split(":")
        )
        position = _Position(direction, float(created_at), str(uuid.UUID(task_id)))
    except (ValueError, UnicodeError, binascii.Error):
        raise ValueError("The page cursor is not valid.") from None
    if direction not in ("o", "n") or not math.isfinite(position.created_at):
        raise ValueError("The page cursor is not valid.")
    return position


def _filtered(account_id: str, where: TaskFilter) -> Select[Task]:
    if where.status is not None and where.status not in TASK_STATUSES:
        raise ValueError(f"Unknown status '{where.status[:32]}'.")
    query = select(Task).where(Task.account_id == account_id)
    if where.status is not None:
        query = query.where(Task.status == where.status)
    if where.key_id is not None:
        query = query.where(Task.key_id == where.key_id)
    if where.created_from is not None:
        query = query.where(Task.created_at >= where.created_from)
    if where.created_before is not None:
        query = query.where(Task.created_at < where.created_before)
    return query


def _from_position(query: Select[Task], at: _Position | None) -> Select[Task]:
    """The rows past ``at`` in its direction, nearest first. The plain bound on created_at
    lets both databases walk the (account_id, created_at) index from the cursor."""
    if at is None:
        return query.order_by(Task.created_at.desc(), Task.id.desc())
    if at.direction == "o":
        return query.where(
            Task.created_at <= at.created_at,
            or_(Task.created_at < at.created_at, Task.id < at.task_id),
        ).order_by(Task.created_at.desc(), Task.id.desc())
    return query.where(
        Task.created_at >= at.created_at,
        or_(Task.created_at > at.created_at, Task.id > at.task_id),
    ).order_by(Task.created_at.asc(), Task.id.asc())


async def list_tasks(
    session: AsyncSession,
    account_id: str,
    where: TaskFilter = TaskFilter(),  # noqa: B008 - frozen, so a shared default is safe
    *,
    cursor: str | None = None,
    limit: int = 20,
) -> TaskPage:
    """A page of the account's tasks, newest first (created_at, then id, both descending).

    Paging is by keyset: a cursor names the last task shown, so tasks created meanwhile never
    shift a page (no task twice, none skipped). Works the same on SQLite and PostgreSQL.
    Raises ValueError (with a message for people) for a bad cursor, status or limit.
    """
    if not 1 <= limit <= MAX_PAGE:
        raise ValueError(f"The page size must be between 1 and {MAX_PAGE}.")
    at = _decode_cursor(cursor) if cursor else None
    filtered = _filtered(account_id, where)
    rows = list(await session.scalars(_from_position(filtered, at).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    if at is not None and at.direction == "n":
        if not more:  # back at the newest tasks: show a full first page
            return await list_tasks(session, account_id, where, limit=limit)
        rows.reverse()  # fetched oldest first, shown newest first
        older, newer = True, True
    else:
        older, newer = more, at is not None and bool(rows)
    return TaskPage(
        tasks=rows,
        next_cursor=_encode_cursor("o", rows[-1]) if older else None,
        newer_cursor=_encode_cursor("n", rows[0]) if newer else None,
    )


async def refunds(
    session: AsyncSession, account_id: str, task_ids: Sequence[str]
) -> dict[str, int]:
    """What the ledger refunded for each of ``task_ids`` (tasks without a refund are absent),
    in one query for a whole page."""
    if not task_ids:
        return {}
    rows = await session.execute(
        select(LedgerEntry.task_id, LedgerEntry.amount).where(
            LedgerEntry.account_id == account_id,
            LedgerEntry.kind == "refund",
            LedgerEntry.task_id.in_(list(task_ids)),
        )
    )
    return {task_id: int(amount) for task_id, amount in rows if task_id is not None}


async def count_in_flight(session: AsyncSession, account_id: str) -> int:
    """How many of the account's tasks are pending or processing."""
    count = await session.scalar(
        select(func.count())
        .select_from(Task)
        .where(Task.account_id == account_id, Task.status.in_(IN_FLIGHT))
    )
    return int(count or 0)


@dataclass(frozen=True)
class TaskDetail:
    """A task with what its page shows beside it: the refund and the callback's delivery log."""

    task: Task
    refund: int | None
    callback: Callback | None
    attempts: list[CallbackAttempt]


async def task_detail(session: AsyncSession, account_id: str, task_id: str) -> TaskDetail:
    """The task of ``account_id`` with its refund and callback log; TaskNotFound otherwise."""
    task = await get_task(session, account_id, task_id)
    refund = (await refunds(session, account_id, [task.id])).get(task.id)
    callback = await session.get(Callback, task.id)
    attempts = await callbacks.attempts(session, task.id) if callback else []
    return TaskDetail(task, refund, callback, attempts)

"""The SQL of tasks on the request path: adding a task, reading one for its caller, and the
sums of a key's spend (spend limits count the price of a key's tasks that did not fail); and of
a task's run: starting it and completing it (tasks/jobs.py)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from imagegate.catalog.store import VERSION_COLUMN
from imagegate.db.sql import Row, Tx, arrays, from_json, merged, to_json, unnest
from imagegate.keys.store import CALLER_WIDTH, caller_query, callers_query
from imagegate.tasks.status import TaskStatus

# A new task's columns, each from its parameter of that name (status aside), with its SQL type
# (PostgreSQL's insert_each sends them as arrays).
_GIVEN = {
    "id": "varchar", "account_id": "varchar", "key_id": "varchar", "model": "text", "input": "json",
    "callback_url": "text", "price": "bigint", "created_at": "float8", "reported_model": "text",
}  # fmt: skip
_INSERT_INTO = f"INSERT INTO tasks (status, {', '.join(_GIVEN)})"
_PENDING = f"'{TaskStatus.PENDING}'"
_VALUES = ", ".join([_PENDING, *(f":{column}" for column in _GIVEN)])
_INSERT = f"{_INSERT_INTO} VALUES ({_VALUES})"

# PostgreSQL: a statement's WITH query of one row per element of its array parameters.
ASKED = "asked"

# A task as the API shows it (TaskView), from the tasks table as ``t``.
VIEW_COLUMNS = (
    "t.id, t.status, t.model, t.created_at, t.completed_at, t.output_urls, t.error_code,"
    " t.error_message, t.reported_model"
)

# The caller and the task in one round trip: the task only when it is the caller's account's.
_TASK_JOIN = " LEFT JOIN tasks t ON t.id = {task_id} AND t.account_id = k.account_id"
_CALLER_AND_TASK = caller_query(", " + VIEW_COLUMNS, _TASK_JOIN.format(task_id=":task_id"))

# A create's caller: the key and account (keys/store.py), then the catalogue's version
# (catalog/cache.py) and the ratio of the account's price plan (billing/plans.py), if any.
_CREATOR_COLUMNS = f", {VERSION_COLUMN}, p.ratio"
_PLAN_JOIN = " LEFT JOIN price_plans p ON p.name = a.price_plan"
_CREATOR = caller_query(_CREATOR_COLUMNS, _PLAN_JOIN)

# PostgreSQL: the same reads for many requests in one statement (tasks/reads.py), each request's
# parameters a row of the WITH query ASKED (with its place, n).
_CREATORS_ASKED = {"n": "int", "hash": "text"}
_CREATORS = (
    f"WITH {unnest(ASKED, _CREATORS_ASKED)} {callers_query(ASKED, _CREATOR_COLUMNS, _PLAN_JOIN)}"
)
_WITH_TASKS_ASKED = {"n": "int", "hash": "text", "task_id": "varchar"}
_TASKS_JOIN = _TASK_JOIN.format(task_id=f"{ASKED}.task_id")
_CALLERS_AND_TASKS = (
    f"WITH {unnest(ASKED, _WITH_TASKS_ASKED)}"
    f" {callers_query(ASKED, ', ' + VIEW_COLUMNS, _TASKS_JOIN)}"
)

_SPENT = (
    "SELECT COALESCE(SUM(CASE WHEN created_at >= :hour THEN price ELSE 0 END), 0),"
    " COALESCE(SUM(CASE WHEN created_at >= :day THEN price ELSE 0 END), 0),"
    " COALESCE(SUM(price), 0)"
    f" FROM tasks WHERE key_id = :key_id AND status != '{TaskStatus.FAILED}'"
    " AND created_at >= :since"
)

_SPEND_IN_WINDOW = (
    "SELECT created_at, price FROM tasks WHERE key_id = :key_id"
    f" AND status != '{TaskStatus.FAILED}'"
    " AND created_at >= :since ORDER BY created_at"
)


# Statuses of up to STATUS_BATCH tasks (tasks/watch.py's sweep): one statement text whatever
# their number (unused places hold ''), so PostgreSQL prepares it once.
STATUS_BATCH = 200
_STATUSES = (
    "SELECT id, status FROM tasks WHERE id IN ("
    + ", ".join(f":t{n}" for n in range(STATUS_BATCH))
    + ")"
)

# A task's run (tasks/service.py's start and complete): what the run and its end's bookkeeping
# read (tasks/status.py's EndedTask).
_RUN_COLUMNS = "id, model, status, input, callback_url, price, created_at, completed_at, error_code"

_START = (
    f"UPDATE tasks SET status = '{TaskStatus.PROCESSING}', started_at = :now"
    f" WHERE id = :id AND status = '{TaskStatus.PENDING}'"
)

# ... and the catalogue's version, so the run finds its model without a read of its own.
_PROCESSING = (
    f"SELECT {_RUN_COLUMNS}, {VERSION_COLUMN} FROM tasks"
    f" WHERE id = :id AND status = '{TaskStatus.PROCESSING}'"
)

# PostgreSQL, in one statement: the task just started, or the one a crashed run left processing.
# Both halves read the statement's snapshot, taken before the UPDATE: a task this statement
# starts shows only in the first, one already processing only in the second.
_START_OR_PROCESSING = (
    f"WITH started AS ({_START} RETURNING {_RUN_COLUMNS})"
    f" SELECT {_RUN_COLUMNS}, {VERSION_COLUMN} FROM started UNION ALL {_PROCESSING}"
)

_COMPLETE = (
    f"UPDATE tasks SET status = '{TaskStatus.COMPLETED}', completed_at = :now, output_urls = :urls"
    f" WHERE id = :id AND status = '{TaskStatus.PROCESSING}' RETURNING {_RUN_COLUMNS}"
)

_TASK_OF = (
    f"SELECT {VIEW_COLUMNS} FROM tasks t WHERE t.id = :task_id AND t.account_id = :account_id"
)


@dataclass(frozen=True)
class TaskView:
    """What the API shows of a task (tasks/presenter.py reads these attributes)."""

    id: str
    status: str
    model: str
    created_at: float
    completed_at: float | None
    output_urls: list[str] | None
    error_code: str | None
    error_message: str | None
    reported_model: str | None


@dataclass(frozen=True)
class RunTask:
    """A task as its run sees it (an EndedTask once it has ended)."""

    id: str
    model: str
    status: str
    input: dict[str, Any]
    callback_url: str | None
    price: int
    created_at: float
    completed_at: float | None
    error_code: str | None
    catalog_version: int | None = None  # as the run started (catalog/cache.py)


def _run_task(row: Row | None) -> RunTask | None:
    if row is None:
        return None
    task_id, model, status, task_input, url, price, created_at, completed_at, code, *version = row
    return RunTask(
        task_id, model, status, from_json(task_input), url, price, created_at, completed_at, code,
        *version,
    )  # fmt: skip


async def start(tx: Tx, task_id: str, now: float) -> RunTask | None:
    """pending -> processing; the task while it is processing (started now, or left so by a
    run that crashed), else None (it is final). One statement on PostgreSQL."""
    params = {"id": task_id, "now": now}
    if tx.dialect == "postgresql":
        return _run_task(await tx.one(_START_OR_PROCESSING, params))
    await tx.run(_START, params)
    return _run_task(await tx.one(_PROCESSING, params))


@dataclass(frozen=True)
class Then:
    """More of the statement that completes a task (PostgreSQL): WITH queries that read the
    completed task as ``ended``, a column computed for its row, and their parameters."""

    steps: str
    column: str
    params: dict[str, Any]


async def complete(
    tx: Tx, task_id: str, urls: list[str], now: float, then: Then | None = None
) -> RunTask | None:
    """processing -> completed with its images; None when the task was not processing.
    ``then``: what follows from it, in the same statement."""
    params = {"id": task_id, "urls": to_json(urls), "now": now}
    if then is None:
        return _run_task(await tx.one(_COMPLETE, params))
    sql = (
        f"WITH ended AS ({_COMPLETE}), {then.steps} SELECT {_RUN_COLUMNS}, {then.column} FROM ended"
    )
    row = await tx.one(sql, merged(params, then.params))
    return None if row is None else _run_task(row[:-1])


async def insert(tx: Tx, **task: Any) -> None:
    """A pending task: id, account_id, key_id, model, input, callback_url, price, created_at,
    reported_model."""
    await tx.run(_INSERT, _params(task))


def _params(task: Mapping[str, Any]) -> dict[str, Any]:
    """insert()'s parameters: the task's columns, its input as JSON."""
    return {**task, "input": to_json(task["input"])}


# PostgreSQL, tasks added in one statement (tasks/service.py's create_tasks_in_one): ASKED, a
# WITH query of one row per task from arrays (db/sql.py's unnest), each task's columns and more
# that the statement's other WITH queries read; INSERTED, the tasks that those let through.
INSERTED = "task"
_EACH_VALUES = ", ".join([_PENDING, *_GIVEN])  # (the same values, from a row's columns)


async def insert_each(
    tx: Tx,
    tasks: Sequence[Mapping[str, Any]],
    more: Mapping[str, str],
    steps: str,
    source: str,
    column: tuple[str, dict[str, Any]],
) -> list[str]:
    """PostgreSQL, one statement: ASKED, a row for each of ``tasks`` (insert()'s columns and
    ``more``'s, column: SQL type); ``steps``, WITH queries that read it; insert()'s task for each
    row of ``source`` (one of them), as INSERTED; and ``column`` (an expression and its
    parameters, computed once). The ids of the tasks inserted."""
    expression, params = column
    types = _GIVEN | dict(more)
    sql = (
        f"WITH {unnest(ASKED, types)}, {steps}, {INSERTED} AS ({_INSERT_INTO} SELECT"
        f" {_EACH_VALUES} FROM {source} RETURNING id) SELECT id, {expression} FROM {INSERTED}"
    )
    rows = await tx.all(sql, merged(arrays([_params(task) for task in tasks], types), params))
    return [row[0] for row in rows]


async def creator(tx: Tx, key_hash: str) -> Row | None:
    """The caller's row (keys/store.py) followed by the catalogue's version and the account's
    plan ratio (None: list prices), or None when no key has that hash."""
    return await tx.one(_CREATOR, {"hash": key_hash})


async def creators(tx: Tx, key_hashes: Sequence[str]) -> list[Row | None]:
    """PostgreSQL: creator() for each of ``key_hashes``, in one statement."""
    asked = [{"n": n, "hash": hashed} for n, hashed in enumerate(key_hashes)]
    return _in_place(await tx.all(_CREATORS, arrays(asked, _CREATORS_ASKED)), len(asked))


async def callers_and_tasks(tx: Tx, asked: Sequence[tuple[str, str]]) -> list[Row | None]:
    """PostgreSQL: caller_and_task() for each (key hash, task id) of ``asked``, in one
    statement."""
    rows = [{"n": n, "hash": hashed, "task_id": task} for n, (hashed, task) in enumerate(asked)]
    return _in_place(await tx.all(_CALLERS_AND_TASKS, arrays(rows, _WITH_TASKS_ASKED)), len(rows))


def _in_place(rows: list[Row], count: int) -> list[Row | None]:
    """A grouped read's rows (each its place n first) as the row of each place, or None."""
    found = {row[0]: row[1:] for row in rows}
    return [found.get(n) for n in range(count)]


async def caller_and_task(tx: Tx, key_hash: str, task_id: str) -> Row | None:
    """The caller's row (keys/store.py) followed by the task's columns (None when it is not the
    caller's), or None when no key has that hash."""
    return await tx.one(_CALLER_AND_TASK, {"hash": key_hash, "task_id": task_id})


def view_of(row: Row) -> TaskView | None:
    """The task in a caller_and_task() row."""
    return view(row[CALLER_WIDTH:])


async def task_of(tx: Tx, account_id: str, task_id: str) -> TaskView | None:
    """The task if it is ``account_id``'s."""
    row = await tx.one(_TASK_OF, {"task_id": task_id, "account_id": account_id})
    return None if row is None else view(row)


async def statuses(tx: Tx, task_ids: list[str]) -> dict[str, str]:
    """The status of each of ``task_ids`` (at most STATUS_BATCH) that exists."""
    params = {f"t{n}": task_ids[n] if n < len(task_ids) else "" for n in range(STATUS_BATCH)}
    return {row[0]: row[1] for row in await tx.all(_STATUSES, params)}


def view(columns: Row) -> TaskView | None:
    """The task in VIEW_COLUMNS' columns; None when they are NULL (an outer join found none)."""
    if columns[0] is None:
        return None
    task_id, status, model, created_at, completed_at, urls, code, message, reports = columns
    return TaskView(
        task_id, status, model, created_at, completed_at, from_json(urls), code, message, reports
    )


async def spent(tx: Tx, key_id: str, hour: float, day: float, since: float) -> tuple[int, int, int]:
    """Credits ``key_id`` spent on tasks that did not fail, created since ``hour``, since
    ``day`` and since ``since`` (float("-inf"): ever); ``since`` is the earliest of the three."""
    params = {"key_id": key_id, "hour": hour, "day": day, "since": since}
    row = await tx.one(_SPENT, params)
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])


async def spend_since(tx: Tx, key_id: str, since: float) -> list[Row]:
    """(created_at, price) of the key's tasks since ``since`` that did not fail, oldest first."""
    return await tx.all(_SPEND_IN_WINDOW, {"key_id": key_id, "since": since})

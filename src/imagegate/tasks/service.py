"""The task state machine: pending -> processing -> completed | failed, by compare-and-set.

Services take a session and never commit; the caller owns the transaction.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from imagegate.billing import service as billing
from imagegate.billing import store as ledger
from imagegate.billing.plans import planned_price
from imagegate.callbacks import service as callbacks
from imagegate.catalog import CatalogModel
from imagegate.db.database import Database
from imagegate.db.models import Task
from imagegate.db.sql import SessionTx, Tx
from imagegate.errors import InvalidRequest, ModelNotFound, TaskNotFound
from imagegate.jobs.queue import JobQueue
from imagegate.jobs.store import EACH_JOB, NewJob, each_job
from imagegate.keys.service import Principal
from imagegate.keys.spend import check_spend
from imagegate.tasks import idempotency, store
from imagegate.tasks.idempotency import IdempotencyKey
from imagegate.tasks.schemas import CreateTaskRequest
from imagegate.tasks.status import IN_FLIGHT, EndedTask, TaskStatus
from imagegate.tasks.watch import announce

T = TypeVar("T")

RUN_TASK = "run_task"
log = logging.getLogger(__name__)


def admitted_model(
    principal: Principal, request: CreateTaskRequest, models: Mapping[str, CatalogModel]
) -> CatalogModel:
    """The catalogue model a create asks for, or ModelNotFound: unknown, inactive, or outside
    the key's model allowlist (so a key cannot probe the catalogue); InvalidRequest for a size
    the model does not offer."""
    model = models.get(request.model)
    if model is None or not model.active or not principal.may_use(model.name):
        raise ModelNotFound(f"Model '{request.model}' does not exist or is inactive.")
    size = request.input.resolved()["size"]
    if size not in model.sizes:
        raise InvalidRequest(
            f"'input.size' must be one of: {', '.join(model.sizes)} (for {model.name})."
        )
    return model


@dataclass(frozen=True)
class NewTask:
    """A task about to be created (new_task): its id, who pays, its model and input, its price
    (on the payer's plan) and when."""

    id: str
    principal: Principal
    model: CatalogModel
    input: dict[str, str]
    callback_url: str | None
    price: int
    now: float

    def row(self) -> dict[str, Any]:
        """Its columns (tasks/store.py's insert)."""
        return {
            "id": self.id,
            "account_id": self.principal.account_id,
            "key_id": self.principal.key_id,
            "model": self.model.name,
            "input": self.input,
            "callback_url": self.callback_url,
            "price": self.price,
            "created_at": self.now,
            "reported_model": self.model.reports,
        }

    @property
    def run_job(self) -> tuple[dict[str, Any], str]:
        """Its run's job: the arguments, and the lock that keeps two runs of it apart."""
        return {"task_id": self.id}, f"task:{self.id}"


def new_task(
    principal: Principal,
    request: CreateTaskRequest,
    now: float,
    model: CatalogModel,
    plan_ratio: str | None = None,
) -> NewTask:
    """A new task of ``model`` (see tasks/admission.py) for ``principal``. The price is the
    model's for the input's speed, on the account's plan (``plan_ratio``, billing/plans.py)."""
    task_input = request.input.resolved()
    price = planned_price(model.price(task_input["rendering_speed"]), plan_ratio)
    return NewTask(new_task_id(now), principal, model, task_input, request.callback_url, price, now)


async def create_task(
    tx: Tx, queue: JobQueue, task: NewTask, key: IdempotencyKey | None = None
) -> str:
    """``task`` pending, its charge and its job, in the caller's transaction, with its
    Idempotency-Key if any; returns the task's id.

    Raises KeyTaken when a live row holds ``key``, SpendLimitExceeded past a key's spend limit
    and InsufficientCredits when the balance is below the price; in each case the transaction
    is rolled back and nothing is kept.
    """
    payer, now = task.principal, task.now
    if key is not None:  # first: a concurrent create with this key waits here, charging nothing
        await idempotency.claim(tx, payer.account_id, key, task.id, now)
    await check_spend(tx, payer.key_id, payer.spend, task.price, now)
    # The charge: on PostgreSQL last, as the account's row stays locked from its UPDATE until
    # the commit (concurrent creates of one account wait only for that); on SQLite, whose one
    # writer locks no rows, first, so that a refused charge has written nothing to undo (its
    # group commit then needs no savepoint, db/sqlite_hot.py).
    charge_first = tx.dialect == "sqlite"
    if charge_first:
        await _charge(tx, queue, task)
    await store.insert(tx, **task.row())
    args, lock = task.run_job
    await queue.defer(tx, RUN_TASK, args, queue=task.model.queue, lock=lock)
    if not charge_first:
        await _charge(tx, queue, task)
    return task.id


async def _charge(tx: Tx, queue: JobQueue, task: NewTask) -> None:
    payer = task.principal
    await billing.charge(
        tx, payer.account_id, payer.key_id, task.id, task.price, task.now, queue=queue
    )


def fits_one_statement(principal: Principal, key: IdempotencyKey | None) -> bool:
    """Whether create_tasks_in_one (PostgreSQL) may take a create: no Idempotency-Key, a key
    with no spend limits (each of those needs statements of its own, and so does a low-balance
    alert, which create_tasks_in_one checks in its statement)."""
    return key is None and not principal.spend


# A create that create_tasks_in_one takes: the task and its run's job (run_job).
GroupedCreate = tuple[NewTask, NewJob]


def run_job(queue: JobQueue, task: NewTask) -> NewJob:
    """The job that runs ``task``, made in its create's request (jobs carry its id)."""
    args, lock = task.run_job
    return queue.job(RUN_TASK, args, queue=task.model.queue, lock=lock)


async def create_tasks_in_one(
    tx: Tx, queue: JobQueue, creates: Sequence[GroupedCreate]
) -> set[str]:
    """create_task() for each of ``creates`` in one statement (PostgreSQL; see
    fits_one_statement and Database.write's ``one_statement``): the ids of the tasks created.
    The others wrote nothing: their charge was not taken (too few credits for all of their
    account's creates in the statement, a key or account refused since it was read, an account
    with a low-balance alert), and create_task, in a transaction of each, says why or alerts."""
    rows = [task.row() | each_job(job) for task, job in creates]
    charging = ledger.charging_each(store.ASKED)
    defer = queue.deferring_each(tx, ledger.PAID, RUN_TASK)
    return set(await store.insert_each(tx, rows, EACH_JOB, charging, ledger.PAID, defer))


async def write_grouped(
    db: Database, queue: JobQueue, creates: Sequence[GroupedCreate]
) -> list[bool]:
    """create_tasks_in_one() as a write of its own (db/grouped.py's Grouped runs it for
    concurrent creates): whether each was created. When the database refused the statement
    (which then kept nothing), none was: each create's own transaction meets the refusal alone.
    """

    async def write(tx: Tx) -> set[str]:
        return await create_tasks_in_one(tx, queue, creates)

    try:
        created = await db.write(write, one_statement=True)
    except Exception as exc:
        if not db.rolled_back(exc):
            raise
        # (Rare: an account deleted meanwhile, say. An error, so that a fault of the statement
        # itself, which would send every create the long way, is seen.)
        log.error(
            "%d creates in one statement were refused (%r); each runs alone", len(creates), exc
        )
        created = set()
    return [task.id in created for task, _ in creates]


_TASK_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def new_task_id(now: float) -> str:
    """A UUID version 7 (RFC 9562): the creation millisecond, then 74 random bits. Ids that grow
    with time land at the end of the indexes that hold them (tasks, ledger, jobs' arguments)
    instead of on a random page each, so a create dirties fewer pages on either database."""
    random = int.from_bytes(os.urandom(10), "big")
    value = (int(now * 1000) & (1 << 48) - 1) << 80 | 0x7 << 76 | (random >> 68) << 64
    value |= 0b10 << 62 | random & (1 << 62) - 1
    digits = f"{value:032x}"  # (what str(uuid.UUID(int=value)) writes, without the object)
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"


def task_id_or_none(task_id: str) -> str | None:
    """``task_id`` when it can name a task (a UUID as we write them), else None."""
    return task_id if _TASK_ID.fullmatch(task_id) else None


def visible(task: T | None, task_id: str) -> T:
    """The task the caller asked for, or TaskNotFound, never a hint that another's exists."""
    if task is None:
        raise TaskNotFound(f"Task '{task_id[:64]}' does not exist.")
    return task


async def get_task(session: AsyncSession, account_id: str, task_id: str) -> Task:
    """The task if it belongs to ``account_id``; otherwise TaskNotFound."""
    if task_id_or_none(task_id) is None:
        return visible(None, task_id)
    task = await session.scalar(
        select(Task).where(Task.id == task_id, Task.account_id == account_id)
    )
    return visible(task, task_id)


async def start(tx: Tx, task_id: str, now: float) -> store.RunTask | None:
    """Move pending -> processing; returns the task while it is processing (also when a crashed
    run left it so), or None when it is already final. One statement on PostgreSQL (see
    Database.write's ``one_statement``)."""
    task = await store.start(tx, task_id, now)
    if task is not None:
        announce(tx, task_id)  # a crashed run's task is announced again: waiters read it again
    return task


async def complete(
    tx: Tx,
    queue: JobQueue,
    task_id: str,
    image_keys: Sequence[str],
    now: float,
    delays: Sequence[float],
) -> store.RunTask | None:
    """processing -> completed, its callback (if any) planned in the same transaction; None
    when the task was not processing (e.g. a duplicate run). One statement on PostgreSQL (see
    Database.write's ``one_statement``)."""
    if tx.dialect == "postgresql":
        steps, column, params = callbacks.planning(tx, queue, "ended", task_id, delays, now)
        then = store.Then(steps, column, params)
        return await store.complete(tx, task_id, list(image_keys), now, then)
    task = await store.complete(tx, task_id, list(image_keys), now)
    if task is not None:
        announce(tx, task_id)
        await plan_callback(tx, queue, task, delays, now)
    return task


async def fail(
    session: AsyncSession, task_id: str, code: str, message: str, now: float
) -> Task | None:
    """pending|processing -> failed with the refund, once; None when already final."""
    task: Task | None = await session.scalar(
        update(Task)
        .where(Task.id == task_id, Task.status.in_(IN_FLIGHT))
        .values(status=TaskStatus.FAILED, completed_at=now, error_code=code, error_message=message)
        .returning(Task)
    )
    if task is not None:
        await billing.refund(session, task_id, now)
        announce(SessionTx(session), task_id)
    return task


CANCELLED = "cancelled"
CANCELLED_MESSAGE = "The task was cancelled by its owner; its credits were refunded."


async def cancel(
    session: AsyncSession,
    queue: JobQueue,
    account_id: str,
    task_id: str,
    now: float,
    callback_delays: Sequence[float],
) -> Task:
    """A pending or processing task of ``account_id`` fails with code ``cancelled``, refunded and
    announced (its run stops, tasks/jobs.py) with its ``task.failed`` callback. TaskNotFound for
    another account's task; InvalidRequest for one that is already final."""
    task = await get_task(session, account_id, task_id)
    ended = await fail(session, task.id, CANCELLED, CANCELLED_MESSAGE, now)
    if ended is None:
        await session.refresh(task)
        raise InvalidRequest(
            f"Task '{task.id}' is already {task.status}; only a pending or processing task"
            " can be cancelled."
        )
    await plan_callback(SessionTx(session), queue, ended, callback_delays, now)
    return ended


async def plan_callback(
    tx: Tx, queue: JobQueue, ended: EndedTask, delays: Sequence[float], now: float
) -> None:
    """Plan the callback of a task that just ended, in the transaction that ended it."""
    if ended.callback_url:
        await callbacks.schedule(tx, queue, ended.id, ended.callback_url, ended.status, delays, now)

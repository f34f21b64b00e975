"""The task state machine: pending -> processing -> completed | failed, by compare-and-set.

Services take a session and never commit; the caller owns the transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from imagegate.billing import service as billing
from imagegate.catalog import find_model
from imagegate.db.models import Task
from imagegate.errors import ModelNotFound, TaskNotFound
from imagegate.jobs.queue import JobQueue
from imagegate.keys.service import Principal
from imagegate.keys.spend import check_spend
from imagegate.tasks.schemas import CreateTaskRequest

RUN_TASK = "run_task"


def task_queue(model: str) -> str:
    """The queue of a model's tasks, so workers (GPU ones, say) can take only their models."""
    return f"model:{model}"


async def create_task(
    session: AsyncSession,
    queue: JobQueue,
    principal: Principal,
    request: CreateTaskRequest,
    now: float,
) -> Task:
    """A pending task, its charge and its job, in the caller's transaction.

    Raises ModelNotFound for an unknown or inactive model (or one outside the key's allowlist),
    SpendLimitExceeded past a key's spend limit and InsufficientCredits when the balance is below
    the price; in each case nothing is written.
    """
    model = find_model(request.model)
    if model is None or (principal.models is not None and model.name not in principal.models):
        raise ModelNotFound(f"Model '{request.model}' does not exist or is inactive.")
    task_input = request.input.resolved()
    price = model.price(task_input["rendering_speed"])
    await check_spend(session, principal.key_id, principal.spend, price, now)
    task_id = str(uuid.uuid4())
    await billing.charge(session, principal.account_id, principal.key_id, task_id, price, now)
    task = Task(
        id=task_id,
        account_id=principal.account_id,
        key_id=principal.key_id,
        model=model.name,
        status="pending",
        input=task_input,
        callback_url=request.callback_url,
        price=price,
        created_at=now,
    )
    session.add(task)
    queue.defer(session, RUN_TASK, {"task_id": task_id}, queue=task_queue(model.name))
    return task


async def get_task(session: AsyncSession, account_id: str, task_id: str) -> Task:
    """The task if it belongs to ``account_id``; otherwise TaskNotFound, never a hint it exists."""
    try:
        uuid.UUID(task_id)
    except ValueError:
        raise TaskNotFound(f"Task '{task_id[:64]}' does not exist.") from None
    task = await session.scalar(
        select(Task).where(Task.id == task_id, Task.account_id == account_id)
    )
    if task is None:
        raise TaskNotFound(f"Task '{task_id}' does not exist.")
    return task


async def start(session: AsyncSession, task_id: str, now: float) -> Task | None:
    """Move pending -> processing; returns the task while it is processing (also when a crashed
    run left it so), or None when it is already final."""
    await session.execute(
        update(Task)
        .where(Task.id == task_id, Task.status == "pending")
        .values(status="processing", started_at=now)
    )
    task = await session.get(Task, task_id, populate_existing=True)
    if task is None or task.status != "processing":
        return None
    return task


async def complete(
    session: AsyncSession, task_id: str, image_keys: Sequence[str], now: float
) -> Task | None:
    """processing -> completed; None when the task was not processing (e.g. a duplicate run)."""
    task: Task | None = await session.scalar(
        update(Task)
        .where(Task.id == task_id, Task.status == "processing")
        .values(status="completed", completed_at=now, output_urls=list(image_keys))
        .returning(Task)
    )
    return task


async def fail(
    session: AsyncSession, task_id: str, code: str, message: str, now: float
) -> Task | None:
    """pending|processing -> failed with the refund, once; None when already final."""
    task: Task | None = await session.scalar(
        update(Task)
        .where(Task.id == task_id, Task.status.in_(("pending", "processing")))
        .values(status="failed", completed_at=now, error_code=code, error_message=message)
        .returning(Task)
    )
    if task is not None:
        await billing.refund(session, task_id, now)
    return task

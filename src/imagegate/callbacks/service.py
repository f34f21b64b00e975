"""Callback bookkeeping: schedule on a task's end, record each attempt, plan the next one.

Services take a session and never commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from imagegate.billing.service import AccountNotFound, get_account
from imagegate.callbacks import store
from imagegate.callbacks.signing import new_secret
from imagegate.db.models import Account, Callback, CallbackAttempt
from imagegate.db.sql import Tx
from imagegate.jobs.queue import JobQueue

DELIVER_CALLBACK = "deliver_callback"
CALLBACKS_QUEUE = "callbacks"


async def schedule(
    tx: Tx,
    queue: JobQueue,
    task_id: str,
    url: str,
    status: str,
    delays: Sequence[float],
    now: float,
) -> None:
    """Plan the first attempt to tell ``url`` that the task ended with ``status``."""
    args, first = _first_attempt(task_id, delays, now)
    await store.insert(tx, task_id, url, f"{store.EVENT_PREFIX}{status}", first, now)
    await queue.defer(tx, DELIVER_CALLBACK, args, queue=CALLBACKS_QUEUE, run_at=first)


def _attempt(task_id: str, number: int) -> dict[str, Any]:
    """The delivery job's arguments for attempt ``number`` (1: the first) of a task's callback."""
    return {"task_id": task_id, "number": number}


def _first_attempt(
    task_id: str, delays: Sequence[float], now: float
) -> tuple[dict[str, Any], float]:
    """The first attempt of a callback planned at ``now``: its job's arguments, and when."""
    return _attempt(task_id, 1), now + delays[0]


def planning(
    tx: Tx, queue: JobQueue, source: str, task_id: str, delays: Sequence[float], now: float
) -> tuple[str, str, dict[str, Any]]:
    """PostgreSQL: schedule() as part of the statement that ends ``task_id``, which ``source``
    (a WITH query: id, callback_url, status) returns when it did: a WITH query, a column for
    the statement's result (it defers the delivery job) and their parameters."""
    args, first = _first_attempt(task_id, delays, now)
    job, params = queue.deferring(
        tx, "planned", DELIVER_CALLBACK, args, queue=CALLBACKS_QUEUE, run_at=first
    )
    return f"planned AS ({store.inserting(source)})", job, params | {"first": first, "now": now}


async def record_attempt(
    tx: Tx, queue: JobQueue, attempt: store.Attempt, delivered: bool, delays: Sequence[float]
) -> str:
    """Store ``attempt`` and move the callback on: delivered, retried later, or failed for good;
    returns its new status.

    The unique (task_id, number) index makes a duplicate run of one attempt fail here, so the
    next attempt is never planned twice.
    """
    retry = not delivered and attempt.number < len(delays)
    next_at = attempt.attempted_at + delays[attempt.number] if retry else None
    status = "delivered" if delivered else ("pending" if retry else "failed")
    await store.record(tx, attempt, status, next_at)
    if next_at is not None:
        args = _attempt(attempt.task_id, attempt.number + 1)
        await queue.defer(tx, DELIVER_CALLBACK, args, queue=CALLBACKS_QUEUE, run_at=next_at)
    return status


async def give_up(session: AsyncSession, task_id: str) -> None:
    """A delivery job that kept failing (not the receiver: our side): the callback has failed."""
    await session.execute(
        update(Callback)
        .where(Callback.task_id == task_id, Callback.status == "pending")
        .values(status="failed", next_attempt_at=None)
    )


async def attempts(session: AsyncSession, task_id: str) -> list[CallbackAttempt]:
    rows = await session.scalars(
        select(CallbackAttempt)
        .where(CallbackAttempt.task_id == task_id)
        .order_by(CallbackAttempt.number)
    )
    return list(rows)


async def webhook_secret(session: AsyncSession, account_id: str) -> str:
    """The account's signing secret, made on first use (once, even when first uses race)."""
    await session.execute(
        update(Account)
        .where(Account.id == account_id, Account.webhook_secret.is_(None))
        .values(webhook_secret=new_secret())
    )
    secret = await session.scalar(select(Account.webhook_secret).where(Account.id == account_id))
    if secret is None:
        raise AccountNotFound(account_id)
    return secret


async def rotate_webhook_secret(session: AsyncSession, account_id: str) -> str:
    """A new signing secret for the account; later attempts are signed with it."""
    account = await get_account(session, account_id)
    account.webhook_secret = new_secret()
    await session.flush()
    return account.webhook_secret

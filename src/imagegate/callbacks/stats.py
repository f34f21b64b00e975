"""Read-only: callbacks that are failing, for the operator's console.

A callback is failing when it failed for good, or is still pending after at least one attempt
that did not deliver it (a delivered attempt ends the callback, so every attempt of a pending
one failed). Attempts are counted per callback through the ``callback_attempts.task_id`` index.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlsplit

from sqlalchemy import ColumnElement, ScalarSelect, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from imagegate.db.models import Callback, CallbackAttempt, Task

T = TypeVar("T")


@dataclass(frozen=True)
class FailingCallback:
    task_id: str
    account_id: str
    host: str  # the receiver's host only: the path and query may carry the client's secrets
    status: str  # pending (retries left) | failed (for good)
    attempts: int
    last_error: str
    next_attempt_at: float | None
    created_at: float


async def failing_callbacks(session: AsyncSession, limit: int = 20) -> list[FailingCallback]:
    """The newest failing callbacks, with their attempt count and last error."""
    mine = CallbackAttempt.task_id == Callback.task_id
    count = select(func.count()).where(mine).correlate(Callback).scalar_subquery()
    last_error = _last(CallbackAttempt.error, mine)
    last_status = _last(CallbackAttempt.status_code, mine)
    failing = or_(
        Callback.status == "failed",
        (Callback.status == "pending") & exists().where(mine),
    )
    rows = await session.execute(
        select(Callback, Task.account_id, count, last_error, last_status)
        .join(Task, Task.id == Callback.task_id)
        .where(failing)
        .order_by(Callback.created_at.desc())
        .limit(limit)
    )
    return [
        FailingCallback(
            task_id=callback.task_id,
            account_id=account_id,
            host=urlsplit(callback.url).hostname or "",
            status=callback.status,
            attempts=int(attempts or 0),
            last_error=error or (f"HTTP {status_code}" if status_code else ""),
            next_attempt_at=callback.next_attempt_at,
            created_at=callback.created_at,
        )
        for callback, account_id, attempts, error, status_code in rows
    ]


def _last(column: InstrumentedAttribute[T], mine: ColumnElement[bool]) -> ScalarSelect[T]:
    """``column`` of the callback's latest attempt."""
    return (
        select(column)
        .where(mine)
        .order_by(CallbackAttempt.number.desc())
        .limit(1)
        .correlate(Callback)
        .scalar_subquery()
    )

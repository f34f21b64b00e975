"""Spend limits per key: credits per rolling hour, per rolling day and in total, net of refunds.

Spend in a window is the price of the key's tasks created in it that did not fail (failed tasks
are refunded). The check runs in the transaction that charges the task, with the key row locked
(PostgreSQL) or the database write-locked (SQLite), so parallel requests cannot overrun a limit.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from imagegate.db.models import ApiKey, Task
from imagegate.errors import SpendLimitExceeded

HOUR, DAY = 3600.0, 86400.0


@dataclass(frozen=True)
class SpendLimits:
    hourly: int | None = None
    daily: int | None = None
    total: int | None = None

    def __bool__(self) -> bool:
        return any(limit is not None for limit in (self.hourly, self.daily, self.total))


async def spent(session: AsyncSession, key_id: str, since: float | None) -> int:
    """Credits ``key_id`` spent since ``since`` (None: ever), net of refunds."""
    query = select(func.coalesce(func.sum(Task.price), 0)).where(
        Task.key_id == key_id, Task.status != "failed"
    )
    if since is not None:
        query = query.where(Task.created_at >= since)
    return int(await session.scalar(query) or 0)


async def check_spend(
    session: AsyncSession, key_id: str, limits: SpendLimits, price: int, now: float
) -> None:
    """SpendLimitExceeded when charging ``price`` would take ``key_id`` over one of its limits."""
    if not limits:
        return
    await session.execute(select(ApiKey.id).where(ApiKey.id == key_id).with_for_update())
    for name, limit, window in [
        ("Hourly", limits.hourly, HOUR),
        ("Daily", limits.daily, DAY),
        ("Total", limits.total, None),
    ]:
        if limit is None:
            continue
        used = await spent(session, key_id, None if window is None else now - window)
        if used + price > limit:
            raise SpendLimitExceeded(
                await _message(session, key_id, name, limit, used, price, window, now)
            )


async def _message(
    session: AsyncSession,
    key_id: str,
    name: str,
    limit: int,
    used: int,
    price: int,
    window: float | None,
    now: float,
) -> str:
    head = f"{name} spend limit reached: this key may spend {limit} credits"
    period = "in total" if window is None else f"per rolling {'hour' if window == HOUR else 'day'}"
    if price > limit:
        return f"{head} {period} and this task alone costs {price}; ask the operator to raise it."
    if window is None:
        return f"{head} in total and has spent {used}; ask the operator to raise the limit."
    frees = await _frees_up_at(session, key_id, limit, used, price, window, now)
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(frees))
    return (
        f"{head} {period} and has spent {used}; {price} more can be spent in "
        f"{max(1, int(frees - now + 0.999))} s (at {when})."
    )


async def _frees_up_at(
    session: AsyncSession,
    key_id: str,
    limit: int,
    used: int,
    price: int,
    window: float,
    now: float,
) -> float:
    """When enough of the window's spend has aged out for ``price`` to fit."""
    rows = await session.execute(
        select(Task.created_at, Task.price)
        .where(Task.key_id == key_id, Task.status != "failed", Task.created_at >= now - window)
        .order_by(Task.created_at)
    )
    for created_at, task_price in rows:
        used -= task_price
        if used + price <= limit:
            return float(created_at) + window
    return now + window

"""Spend limits per key: credits per rolling hour, per rolling day and in total, net of refunds.

Spend in a window is the price of the key's tasks created in it that did not fail (failed tasks
are refunded). The check runs in the transaction that charges the task, with the key row locked
(PostgreSQL) or the database write-locked (SQLite), so parallel requests cannot overrun a limit.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from imagegate.db.sql import Tx
from imagegate.errors import SpendLimitExceeded
from imagegate.keys import store as keys_store
from imagegate.tasks import store

HOUR, DAY = 3600.0, 86400.0
NEVER = float("-inf")


@dataclass(frozen=True)
class SpendLimits:
    hourly: int | None = None
    daily: int | None = None
    total: int | None = None

    def __bool__(self) -> bool:
        return self.hourly is not None or self.daily is not None or self.total is not None


async def spent(tx: Tx, key_id: str, since: float | None) -> int:
    """Credits ``key_id`` spent since ``since`` (None: ever), net of refunds."""
    start = NEVER if since is None else since
    return (await store.spent(tx, key_id, start, start, start))[2]


async def check_spend(tx: Tx, key_id: str, limits: SpendLimits, price: int, now: float) -> None:
    """SpendLimitExceeded when charging ``price`` would take ``key_id`` over one of its limits.
    Runs in the charging transaction, with the key's row locked (PostgreSQL) or the database
    write-locked (SQLite)."""
    if not limits:
        return
    await keys_store.lock_key(tx, key_id)
    since = NEVER if limits.total is not None else now - (DAY if limits.daily else HOUR)
    hour, day, total = await store.spent(tx, key_id, now - HOUR, now - DAY, since)
    for name, limit, window, used in [
        ("Hourly", limits.hourly, HOUR, hour),
        ("Daily", limits.daily, DAY, day),
        ("Total", limits.total, None, total),
    ]:
        if limit is not None and used + price > limit:
            raise SpendLimitExceeded(
                await _message(tx, key_id, name, limit, used, price, window, now)
            )


async def _message(
    tx: Tx,
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
    frees = await _frees_up_at(tx, key_id, limit, used, price, window, now)
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(frees))
    return (
        f"{head} {period} and has spent {used}; {price} more can be spent in "
        f"{max(1, int(frees - now + 0.999))} s (at {when})."
    )


async def _frees_up_at(
    tx: Tx,
    key_id: str,
    limit: int,
    used: int,
    price: int,
    window: float,
    now: float,
) -> float:
    """When enough of the window's spend has aged out for ``price`` to fit."""
    for created_at, task_price in await store.spend_since(tx, key_id, now - window):
        used -= task_price
        if used + price <= limit:
            return float(created_at) + window
    return now + window

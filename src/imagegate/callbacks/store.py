"""The SQL of a callback planned when its task ends (in the transaction that ends it)."""

from __future__ import annotations

from imagegate.db.sql import Tx

_INSERT = (
    "INSERT INTO callbacks (task_id, url, event, status, next_attempt_at, created_at)"
    " VALUES (:task_id, :url, :event, 'pending', :first, :now)"
)


async def insert(tx: Tx, task_id: str, url: str, event: str, first: float, now: float) -> None:
    """A pending callback of ``task_id``, its first attempt due at ``first``."""
    params = {"task_id": task_id, "url": url, "event": event, "first": first, "now": now}
    await tx.run(_INSERT, params)

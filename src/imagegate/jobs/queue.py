"""The job queue port: defer a job inside the caller's transaction; workers claim it after commit.

So a task row, its charge and its job commit or roll back together. Jobs carry ids, never objects.
The engine follows the database (jobs/store.py): our table queue on SQLite, procrastinate on
PostgreSQL.
"""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from imagegate.clock import Clock
from imagegate.db.sql import SessionTx, Tx
from imagegate.jobs import store
from imagegate.logs import with_request_id


class JobQueue:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        # One event per in-process worker, set after a commit that deferred a job, so it starts
        # the job without waiting for its next poll (each worker clears only its own).
        self._listeners: list[asyncio.Event] = []

    def listen(self) -> asyncio.Event:
        """A new event that every wake() sets (for one worker's fetch loop)."""
        event = asyncio.Event()
        self._listeners.append(event)
        return event

    def wake(self) -> None:
        for event in self._listeners:
            event.set()

    async def defer(
        self,
        tx: Tx | AsyncSession,
        kind: str,
        args: dict[str, Any],
        *,
        queue: str = "default",
        run_at: float | None = None,
        lock: str | None = None,
    ) -> None:
        """Add a job to the caller's transaction, runnable at ``run_at`` (default: now). Jobs
        with the same ``lock`` never run at once, and only one of them waits at a time."""
        if isinstance(tx, AsyncSession):
            tx = SessionTx(tx)
        await store.insert(tx, self.job(kind, args, queue=queue, run_at=run_at, lock=lock))
        tx.after_commit(self.wake)

    def job(
        self,
        kind: str,
        args: dict[str, Any],
        *,
        queue: str,
        run_at: float | None = None,
        lock: str | None = None,
    ) -> store.NewJob:
        """The job defer() adds, runnable at ``run_at`` (default: now), its arguments with the
        current request's id; made in the request also for deferring_each, whose statement may
        run outside it."""
        now = self.clock.now()
        due = now if run_at is None else run_at
        return store.NewJob(queue, kind, with_request_id(args), due, now, lock)

    def deferring_each(self, tx: Tx, source: str, kind: str) -> tuple[str, dict[str, Any]]:
        """PostgreSQL: a job of ``kind`` for each row of ``source``, a WITH query of the
        caller's one statement with the columns of jobs/store.py's each_job: the SQL
        expression and its parameters."""
        tx.after_commit(self.wake)
        return store.deferring_each(source, kind)

    def deferring(
        self,
        tx: Tx,
        source: str,
        kind: str,
        args: dict[str, Any],
        *,
        queue: str,
        run_at: float,
        lock: str | None = None,
    ) -> tuple[str, dict[str, Any]]:
        """PostgreSQL: defer() as part of the caller's one statement, once when ``source`` (a
        WITH query of it) has a row: the SQL expression and its parameters (jobs/store.py)."""
        tx.after_commit(self.wake)
        return store.deferring(source, self.job(kind, args, queue=queue, run_at=run_at, lock=lock))

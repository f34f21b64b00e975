"""The job queue port: defer a job inside the caller's transaction; workers claim it after commit.

One table (``jobs``) on SQLite or PostgreSQL, so a task row, its charge and its job commit or roll
back together. Jobs carry ids, never objects.
"""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from imagegate.clock import Clock
from imagegate.db.database import after_commit
from imagegate.db.models import Job


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

    def defer(
        self,
        session: AsyncSession,
        kind: str,
        args: dict[str, Any],
        *,
        queue: str = "default",
        run_at: float | None = None,
    ) -> None:
        """Add a job to the caller's transaction, runnable at ``run_at`` (default: now)."""
        now = self.clock.now()
        session.add(
            Job(
                queue=queue,
                kind=kind,
                args=args,
                status="todo",
                run_at=now if run_at is None else run_at,
                attempts=0,
                created_at=now,
            )
        )
        after_commit(session, self.wake)

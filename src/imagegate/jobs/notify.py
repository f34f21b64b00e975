"""Wake-ups across processes on PostgreSQL: a job's insert also sends NOTIFY (delivered when its
transaction commits), and every process with workers LISTENs, so an `imagegate worker` starts a
job that an API process created at once instead of at its next poll. Polling stays as the
safety net: a lost notification costs a poll interval, never a job."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import psycopg

from imagegate.db.pg_hot import conninfo
from imagegate.jobs.queue import JobQueue

log = logging.getLogger(__name__)
CHANNEL = "imagegate_jobs"  # jobs/store.py sends on it
RECONNECT = (0.5, 1.0, 2.0, 5.0)  # seconds between attempts after a dropped connection


class JobNotifications:
    def __init__(self, url: str, queue: JobQueue) -> None:
        self._conninfo = conninfo(url)
        self._queue = queue
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="job-notifications")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        failures = 0
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self._conninfo, autocommit=True
                ) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    failures = 0
                    self._queue.wake()  # jobs committed while not listening
                    async for _ in conn.notifies():
                        self._queue.wake()
            except psycopg.Error:
                log.warning("job notifications lost their connection; polling meanwhile")
                await asyncio.sleep(RECONNECT[min(failures, len(RECONNECT) - 1)])
                failures += 1

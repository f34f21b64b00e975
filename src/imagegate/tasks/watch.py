"""Waiting for a task to change (long-poll, Prefer: wait, live status, a cancelled run), without
a database query per waiter.

Every change of a task's status is announced: on PostgreSQL by the database itself (a trigger,
migration 0013, sends NOTIFY on CHANNEL, delivered at commit to every process that listens); on
SQLite, where one process owns the database, by the transaction that changed it (``announce``),
with a call in this process after the commit. Each process keeps one
``TaskWatch`` that wakes the waiters of the task announced; they read the task once each.

A sweep every few seconds reads the status of every watched task in one query, so a notice that
got lost (a LISTEN connection that dropped, a worker process of its own on SQLite) delays a
waiter by seconds but never strands it. Idle waiters cost no queries: the sweep is one statement
whatever their number, and runs only while someone waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

import psycopg

from imagegate.db.database import Database
from imagegate.db.pg_hot import conninfo
from imagegate.db.sql import Tx
from imagegate.tasks import store

log = logging.getLogger(__name__)

CHANNEL = "imagegate_tasks"  # the trigger of migration 0013 names it too
SWEEP_SECONDS = 2.0
_RECONNECT_SECONDS = 1.0

# This process's watches, for announcements made on SQLite (no NOTIFY there).
_LOCAL: weakref.WeakSet[TaskWatch] = weakref.WeakSet()


def announce(tx: Tx, task_id: str) -> None:
    """Tell every waiter of ``task_id`` that its status changed, once ``tx`` commits (never when
    it rolls back). On PostgreSQL the database's trigger has done so already."""
    if tx.dialect != "postgresql":
        tx.after_commit(lambda: _announce_here(task_id))


def _announce_here(task_id: str) -> None:
    for watch in list(_LOCAL):
        watch.changed(task_id)


class Changes:
    """One waiter's view of a task's changes: note the status it last read, then wait."""

    def __init__(self, draining: bool = False) -> None:
        self.event = asyncio.Event()
        self.status: str | None = None
        self.draining = draining  # the process is stopping: answer now, wait no more

    def seen(self, status: str) -> None:
        self.status = status

    async def wait(self, seconds: float) -> bool:
        """True once the task may have changed since ``seen``; False after ``seconds``, or at
        once while the process drains."""
        if seconds <= 0 or self.draining:
            return False
        try:
            await asyncio.wait_for(self.event.wait(), seconds)
        except TimeoutError:
            return False
        self.event.clear()
        return not self.draining


class TaskWatch:
    def __init__(self, db: Database, sweep_seconds: float = SWEEP_SECONDS) -> None:
        self._db = db
        self._sweep_seconds = sweep_seconds
        self._waiters: dict[str, set[Changes]] = {}
        self._loops: list[asyncio.Task[None]] = []
        self._draining = False
        _LOCAL.add(self)

    @asynccontextmanager
    async def watching(self, task_id: str) -> AsyncIterator[Changes]:
        """Changes of ``task_id`` while the block runs. Read the task after entering it: a change
        made between that read and a wait is then never missed."""
        self._start()
        changes = Changes(self._draining)
        self._waiters.setdefault(task_id, set()).add(changes)
        try:
            yield changes
        finally:
            waiters = self._waiters.get(task_id)
            if waiters is not None:
                waiters.discard(changes)
                if not waiters:
                    del self._waiters[task_id]

    def changed(self, task_id: str) -> None:
        for changes in self._waiters.get(task_id, ()):
            changes.event.set()

    def drain(self) -> None:
        """The process is stopping: every wait ends now (long-polls answer with the task as it
        is, event streams end and their clients reconnect elsewhere), and no new one waits."""
        self._draining = True
        for waiters in self._waiters.values():
            for changes in waiters:
                changes.draining = True
                changes.event.set()

    def waiting(self) -> int:
        """How many waiters there are (for tests and metrics)."""
        return sum(len(waiters) for waiters in self._waiters.values())

    async def close(self) -> None:
        for loop in self._loops:
            loop.cancel()
        for loop in self._loops:
            with contextlib.suppress(asyncio.CancelledError):
                await loop
        self._loops = []

    def _start(self) -> None:
        if self._loops:
            return
        self._loops.append(asyncio.create_task(self._sweep(), name="task-watch-sweep"))
        if not self._db.is_sqlite:
            self._loops.append(asyncio.create_task(self._listen(), name="task-watch-listen"))

    async def _listen(self) -> None:
        """LISTEN for announcements; after a reconnect every waiter looks again (a notice may
        have been sent while no one listened)."""
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    conninfo(self._db.url), autocommit=True
                ) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self._wake_all()
                    async for notice in conn.notifies():
                        self.changed(notice.payload)
            except (psycopg.Error, OSError):
                log.warning("task watch: lost its LISTEN connection; reconnecting", exc_info=True)
            await asyncio.sleep(_RECONNECT_SECONDS)

    def _wake_all(self) -> None:
        for task_id in list(self._waiters):
            self.changed(task_id)

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(self._sweep_seconds)
            if not self._waiters:
                continue
            try:
                statuses = await self._statuses(list(self._waiters))
            except Exception:  # the database may be restarting; the next sweep tries again
                log.warning("task watch: sweep failed", exc_info=True)
                continue
            for task_id, status in statuses.items():
                for changes in self._waiters.get(task_id, ()):
                    if changes.status != status:
                        changes.event.set()

    async def _statuses(self, task_ids: list[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        for start in range(0, len(task_ids), store.STATUS_BATCH):
            batch = task_ids[start : start + store.STATUS_BATCH]
            found.update(await self._db.read(partial(store.statuses, task_ids=batch)))
        return found

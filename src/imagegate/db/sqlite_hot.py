"""The request path on SQLite: long-lived sqlite3 connections run inline on the event loop, and
one writer that commits creates in groups.

SQLite answers an indexed statement in microseconds, far less than a hop to a thread, so reads run
inline on a connection of their own (WAL: they never wait for the writer). Writes queue for the
writer task: it takes the write lock once for everything queued, runs each operation, commits
once, then answers each caller. An operation that raises is left out of the commit and nothing
else: one that raised before writing anything (a 402 or 429 is refused before a create writes,
tasks/service.py) needs nothing undone; when one raises after writing, the group is rolled back
and run again with each operation in its own savepoint, which undoes just that one. Savepoints
for every operation would cost a fifth of a create's SQLite time (SQLite keeps a copy of each
page an operation first changes, to undo it): so an operation may run twice, and must act
outside the database only through ``tx.after_commit``. Each operation sees its caller's context
variables (the request id that a job it adds carries, the log lines' context), not the writer
task's.

Only ``BEGIN IMMEDIATE`` can wait long (another process, such as `imagegate admin` or a worker,
holding the lock): it is tried inline without waiting, and waited for in a thread when busy. WAL
checkpoints run in a thread too, on a connection of their own, beside the commits; the frames
those wrote meanwhile are then copied with this process's writes held for a moment, so the WAL
starts over instead of growing for as long as writes go on.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from imagegate.db.sql import NO_PARAMS, Params, Row, Tx

log = logging.getLogger(__name__)
T = TypeVar("T")
Operation = Callable[[Tx], Awaitable[Any]]
Queued = tuple[Operation, asyncio.Future[Any], contextvars.Context]
# An operation's future, and its exception or its value, and the Tx it ran on (its hooks).
Outcome = tuple[asyncio.Future[Any], BaseException | None, Any, "SqliteTx"]
BUSY_WAIT = 30.0  # seconds a writer waits for another process's write lock
CHECKPOINT_EVERY = 250  # commits between WAL checkpoints (a WAL of ~50 MB at most under full load)


def connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    for pragma in ("journal_mode=WAL", "foreign_keys=ON", "synchronous=NORMAL"):
        conn.execute(f"PRAGMA {pragma}")
    return conn


class SqliteTx:
    """Statements on one sqlite3 connection, inline."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self.hooks: list[Callable[[], None]] = []
        self.dialect = "sqlite"

    async def one(self, sql: str, params: Params = NO_PARAMS) -> Row | None:
        row: Row | None = self._conn.execute(sql, params).fetchone()
        return row

    async def all(self, sql: str, params: Params = NO_PARAMS) -> list[Row]:
        return self._conn.execute(sql, params).fetchall()

    async def run(self, sql: str, params: Params = NO_PARAMS) -> None:
        self._conn.execute(sql, params)

    def after_commit(self, hook: Callable[[], None]) -> None:
        self.hooks.append(hook)


class SqliteHot:
    def __init__(self, path: str, writers: asyncio.Lock) -> None:
        self._path = path
        self._reader = connect(path)
        self._reader.execute("PRAGMA busy_timeout=5000")
        self._writer = connect(path)
        self._writer.execute("PRAGMA busy_timeout=0")  # never wait inline; see _begin
        self._writer.execute("PRAGMA wal_autocheckpoint=0")  # checkpoints: _checkpoint
        self._writers = writers  # this process's other writers (SQLAlchemy sessions)
        self._queue: list[Queued] = []
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._commits = 0
        self._checkpoint_began = 0
        self._checkpointing: asyncio.Task[None] | None = None

    async def read(self, op: Callable[[Tx], Awaitable[T]]) -> T:
        return await op(SqliteTx(self._reader))

    async def write(self, op: Callable[[Tx], Awaitable[T]], *, one_statement: bool = False) -> T:
        """Run ``op`` in the next group commit; its result once that commit is done (SQLite
        has no round trips to save: ``one_statement`` changes nothing here)."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="sqlite-writer")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.append((op, future, contextvars.copy_context()))
        self._wakeup.set()
        return await future

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._checkpointing is not None:
            await self._checkpointing
        self._reader.close()
        self._writer.close()

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            await asyncio.sleep(0)  # requests ready to write now join this group
            group, self._queue = self._queue, []  # (callers gone meanwhile: skipped below)
            if group:
                async with self._writers:
                    await self._finish_checkpoint()
                    await self._commit_group(group)

    async def _commit_group(self, group: list[Queued]) -> None:
        conn = self._writer
        try:
            await self._begin()
            outcomes = await self._run_ops(group, savepoints=False)
            if outcomes is None:  # one raised after writing: undo it alone, with savepoints
                conn.execute("ROLLBACK")
                await self._begin()
                outcomes = await self._run_ops(group, savepoints=True)
                assert outcomes is not None
            conn.execute("COMMIT")
        except BaseException as exc:  # no lock, a failed commit, or this task is cancelled
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            failure = exc if isinstance(exc, Exception) else RuntimeError("writer stopped")
            for _, future, _ in group:
                if not future.done():
                    future.set_exception(failure)
            if failure is not exc:
                raise
            log.error("a group of writes failed", exc_info=exc)
            return
        self._answer(outcomes)
        self._commits += 1
        if self._commits % CHECKPOINT_EVERY == 0 and self._checkpointing is None:
            self._checkpointing = asyncio.create_task(asyncio.to_thread(self._checkpoint))
            self._checkpoint_began = self._commits

    async def _run_ops(self, group: list[Queued], *, savepoints: bool) -> list[Outcome] | None:
        """Each operation of ``group`` (one whose caller went away is skipped) in the open
        transaction, and how each ended; None, without savepoints, as soon as one raises after
        it wrote (only a savepoint could have undone its writes alone)."""
        conn = self._writer
        outcomes: list[Outcome] = []
        for op, future, context in group:
            if future.cancelled():
                continue
            tx = SqliteTx(conn)
            if savepoints:
                conn.execute("SAVEPOINT op")
            changes = conn.total_changes
            try:
                value = await _in_context(context, op, tx)
            except Exception as exc:
                if not conn.in_transaction:  # SQLite rolled back everything (a full disk)
                    raise
                if savepoints:
                    conn.execute("ROLLBACK TO op")
                    conn.execute("RELEASE op")
                elif conn.total_changes != changes:
                    return None
                outcomes.append((future, exc, None, tx))
            else:
                if savepoints:
                    conn.execute("RELEASE op")
                outcomes.append((future, None, value, tx))
        return outcomes

    @staticmethod
    def _answer(outcomes: list[Outcome]) -> None:
        for future, error, value, tx in outcomes:
            if error is None:
                for hook in tx.hooks:
                    hook()
            if future.done():  # the caller went away meanwhile (its work is committed)
                continue
            if error is None:
                future.set_result(value)
            else:
                future.set_exception(error)

    async def _begin(self) -> None:
        try:
            self._writer.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError:  # another process writes: wait off the loop
            await in_thread_to_the_end(self._begin_waiting)

    def _begin_waiting(self) -> None:
        deadline = time.monotonic() + BUSY_WAIT
        pause = 0.001
        while True:
            try:
                self._writer.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(pause)
                pause = min(pause * 2, 0.05)

    async def _finish_checkpoint(self) -> None:
        """Once a checkpoint that ran beside the commits is done, copy what they wrote meanwhile
        with this process's writes held: SQLite writes the WAL from its start again only after
        a checkpoint copied every frame, so the WAL would otherwise grow for as long as the
        load lasts. The frames left are few: this pause is short."""
        done = self._checkpointing
        if done is None or not done.done():
            return
        self._checkpointing = None
        if self._commits != self._checkpoint_began:
            await in_thread_to_the_end(self._checkpoint)

    def _checkpoint(self) -> None:
        conn = sqlite3.connect(self._path, isolation_level=None)
        try:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error:  # a busy database is checkpointed next time
            log.debug("WAL checkpoint skipped", exc_info=True)
        finally:
            conn.close()


async def _in_context(context: contextvars.Context, op: Operation, tx: Tx) -> Any:
    """``op(tx)`` with ``context``'s variables set in this task for its duration."""
    tokens = [var.set(value) for var, value in context.items()]
    try:
        return await op(tx)
    finally:
        for token in reversed(tokens):
            token.var.reset(token)


async def in_thread_to_the_end(func: Callable[[], None]) -> None:
    """Run ``func`` in a thread and wait for it even when the caller is cancelled: the thread
    holds the connection, and reusing a sqlite3 connection while another thread runs on it
    crashes the process."""
    done = asyncio.ensure_future(asyncio.to_thread(func))
    try:
        await asyncio.shield(done)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await done
        raise

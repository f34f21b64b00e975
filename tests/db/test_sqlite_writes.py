"""SQLite's write lock is taken in a thread (BEGIN IMMEDIATE may wait on another process): a
caller cancelled meanwhile must not hand the connection on while that thread still runs on it."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from harness import BACKEND, wait_for
from imagegate.db.database import Database
from imagegate.db.migrate import upgrade

pytestmark = pytest.mark.skipif(
    BACKEND != "sqlite", reason="SQLite's write lock; the postgres pass has no such thread"
)


async def test_a_cancelled_writer_waits_for_its_thread_and_the_database_stays_usable(
    tmp_path: Path,
) -> None:
    path = tmp_path / "imagegate.db"
    url = f"sqlite+aiosqlite:///{path}"
    upgrade(url)
    db = Database(url)
    async with db.sessions() as session:  # opens the pooled connection (WAL mode) first
        await session.execute(text("SELECT 1"))
    other = sqlite3.connect(path, isolation_level=None)  # another process, say the admin CLI
    other.execute("BEGIN IMMEDIATE")
    entered = asyncio.Event()

    async def write() -> None:
        async with db.transaction() as session:
            entered.set()
            await session.execute(text("INSERT INTO meta (key, value) VALUES ('a', 'b')"))

    writer = asyncio.create_task(write())
    await wait_for(lambda: waiting_on_its_thread(writer))  # BEGIN IMMEDIATE waits on the lock
    writer.cancel()
    started = time.monotonic()
    finished, _ = await asyncio.wait({writer}, timeout=0.5)
    # The event loop stays free (no rollback on the busy connection blocks it for the busy
    # timeout), and the cancelled writer still waits for its thread, which waits for the lock.
    assert time.monotonic() - started < 5
    assert not finished
    other.execute("ROLLBACK")
    other.close()
    with pytest.raises(asyncio.CancelledError):
        await writer
    assert not entered.is_set()

    async with db.transaction() as session:  # the connection is whole and free again
        await session.execute(text("INSERT INTO meta (key, value) VALUES ('c', 'd')"))
    async with db.sessions() as session:
        rows = (await session.execute(text("SELECT key FROM meta ORDER BY key"))).all()
    assert [r[0] for r in rows] == ["c"]
    await db.dispose()


async def waiting_on_its_thread(_task: asyncio.Task[None]) -> bool:
    """Whether a worker thread is running BEGIN IMMEDIATE (blocked on the other writer)."""
    for frame in sys._current_frames().values():
        work = frame.f_locals.get("self") if frame.f_code.co_name == "run" else None
        call = getattr(work, "fn", None)
        if any(str(arg).startswith("BEGIN IMMEDIATE") for arg in getattr(call, "args", ())):
            return True
    return False

"""The request path's SQLite writer (db/sqlite_hot.py): group commits in which an operation that
raises keeps nothing and costs the others nothing, and a write lock held by another process
waited for off the event loop."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import time
from pathlib import Path

import pytest

from harness import BACKEND, wait_for
from imagegate.db import sqlite_hot
from imagegate.db.database import Database
from imagegate.db.migrate import upgrade
from imagegate.db.sql import Tx

pytestmark = pytest.mark.skipif(
    BACKEND != "sqlite", reason="SQLite's writer; the postgres pass has no such thread"
)


async def keys_in_meta(db: Database) -> list[str]:
    rows = await db.read(lambda tx: tx.all("SELECT key FROM meta ORDER BY key"))
    return [row[0] for row in rows]


def insert(  # type: ignore[no-untyped-def]
    key: str,
    fail: bool = False,
    value: str = "v",
    *,
    refuse: bool = False,
    runs: list[str] | None = None,
    committed: list[str] | None = None,
):
    """An operation that adds ``key``; ``fail``: it raises once it has; ``refuse``: it raises
    before it writes. It notes each run in ``runs`` and, after its commit, in ``committed``."""

    async def op(tx: Tx) -> str:
        if runs is not None:
            runs.append(key)
        if refuse:
            raise ValueError(key)
        await tx.run(
            "INSERT INTO meta (key, value) VALUES (:key, :value)", {"key": key, "value": value}
        )
        if committed is not None:
            tx.after_commit(lambda: committed.append(key))
        if fail:
            raise ValueError(key)
        return key

    return op


@pytest.fixture
async def db(tmp_path: Path):  # type: ignore[no-untyped-def]
    url = f"sqlite+aiosqlite:///{tmp_path / 'imagegate.db'}"
    upgrade(url)
    database = Database(url)
    yield database
    await database.dispose()


@pytest.mark.parametrize("wrote", [True, False], ids=["after-writing", "before-writing"])
async def test_a_failed_operation_rolls_back_only_itself_in_its_group(
    db: Database, wrote: bool
) -> None:
    runs: list[str] = []
    committed: list[str] = []
    results = await asyncio.gather(
        *[
            db.write(
                insert(
                    f"k{n:02}",
                    fail=wrote and n % 3 == 0,
                    refuse=not wrote and n % 3 == 0,
                    runs=runs,
                    committed=committed,
                )
            )  # fmt: skip
            for n in range(30)
        ],
        return_exceptions=True,
    )
    failed = [str(r) for r in results if isinstance(r, ValueError)]
    assert failed == [f"k{n:02}" for n in range(30) if n % 3 == 0]
    kept = [f"k{n:02}" for n in range(30) if n % 3]
    assert await keys_in_meta(db) == kept
    assert sorted(committed) == kept  # each kept operation's hooks ran once
    if wrote:  # the group ran again, each operation in a savepoint that undid it alone
        assert len(runs) > 30
    else:  # nothing to undo: no operation ran twice
        assert sorted(runs) == [f"k{n:02}" for n in range(30)]


async def test_the_loop_stays_free_while_another_process_holds_the_lock(db: Database) -> None:
    await keys_in_meta(db)  # opens the connections (WAL mode) first
    other = sqlite3.connect(db.hot._path, isolation_level=None)  # say, the admin CLI
    other.execute("BEGIN IMMEDIATE")
    writer = asyncio.create_task(db.write(insert("a")))
    await wait_for(waiting_for_the_lock)
    started = time.monotonic()
    assert await keys_in_meta(db) == []  # reads go on meanwhile
    writer.cancel()  # its caller goes away: its operation is skipped
    finished, _ = await asyncio.wait({writer}, timeout=5)
    assert finished
    assert time.monotonic() - started < 5
    other.execute("ROLLBACK")
    other.close()
    assert await db.write(insert("c")) == "c"  # the writer is whole and free again
    assert await keys_in_meta(db) == ["c"]


async def waiting_for_the_lock() -> bool:
    """Whether a thread is waiting for the write lock (db/sqlite_hot.py's _begin_waiting)."""
    return any(f.f_code.co_name == "_begin_waiting" for f in sys._current_frames().values())


async def test_the_wal_starts_over_while_writes_go_on(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A checkpoint copies the frames written before it began; SQLite writes the WAL from its
    start again only once every frame was copied. Under writes that never pause, the writer
    copies the rest itself after each checkpoint, so the WAL stays small (it grew by every
    commit's pages before: 250 MB in 10 s of creates)."""
    monkeypatch.setattr(sqlite_hot, "CHECKPOINT_EVERY", 5)
    page = "x" * 4000
    for n in range(3000):
        await db.write(insert(f"k{n}", value=page))
    # Each commit writes about four pages (the row's, its overflow page, the key's index): a
    # WAL that never started over would hold 12,000 of them (50 MB); it holds about 500 here.
    assert wal_size(db) < 3000 * 4096


def wal_size(db: Database) -> int:
    return Path(db.hot._path + "-wal").stat().st_size

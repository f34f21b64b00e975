"""SQLite for SQLAlchemy's aiosqlite dialect, without a thread per connection.

aiosqlite runs every DBAPI call (cursor, execute, fetch, close, commit...) on a thread of its
own and hands the result back through the event loop: a GET /v1/tasks/{id} made 24 such trips,
and they were most of its time. SQLite answers an indexed lookup in microseconds, so this module
runs calls inline on the event loop, behind the same interface the dialect expects.

The one call that can wait long is ``BEGIN IMMEDIATE`` (another process, e.g. `imagegate admin`
or a worker, holding the write lock): it still runs in a thread, so the loop never blocks on it.
Writers of this process are already queued by Database.transaction().
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Callable, Sequence
from types import SimpleNamespace
from typing import Any

from sqlalchemy.dialects.sqlite.aiosqlite import AsyncAdapt_aiosqlite_dbapi

_BLOCKING = ("BEGIN IMMEDIATE", "BEGIN EXCLUSIVE")


async def _in_thread_to_the_end(func: Any, *args: Any) -> None:
    """Run ``func`` in a thread and wait for it even when the caller is cancelled (a request
    cut off, a job past its time limit): the thread holds this connection, and closing or
    reusing a sqlite3 connection while another thread runs on it crashes the process."""
    done = asyncio.ensure_future(asyncio.to_thread(func, *args))
    try:
        await asyncio.shield(done)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await done
        raise


class Cursor:
    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    async def __aenter__(self) -> Cursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._cursor.close()

    async def execute(self, sql: str, parameters: Sequence[Any] = ()) -> Cursor:
        if sql.lstrip().upper().startswith(_BLOCKING):
            await _in_thread_to_the_end(self._cursor.execute, sql, parameters)
        else:
            self._cursor.execute(sql, parameters)
        return self

    async def executemany(self, sql: str, seq_of_parameters: Any) -> Cursor:
        self._cursor.executemany(sql, seq_of_parameters)
        return self

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(size or self._cursor.arraysize)

    async def close(self) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value


class _Inline:
    """Stands in for aiosqlite's request queue: runs the dialect's call at once."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def put_nowait(self, item: tuple[asyncio.Future[Any], Callable[[], Any]]) -> None:
        future, function = item
        try:
            future.set_result(function())
        except Exception as exc:  # handed to the awaiting caller, as aiosqlite does
            future.set_exception(exc)


class Connection:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._connection: sqlite3.Connection | None = conn  # aiosqlite's "still open" flag
        self._tx = _Inline(conn)
        self._thread = SimpleNamespace(daemon=True)  # the dialect marks aiosqlite's thread

    def __await__(self) -> Any:
        yield from ()
        return self

    def cursor(self) -> Cursor:
        return Cursor(self._conn.cursor())

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    async def commit(self) -> None:
        self._conn.commit()

    async def rollback(self) -> None:
        self._conn.rollback()

    async def close(self) -> None:
        if self._connection is not None:
            self._connection = None
            self._conn.close()

    async def create_function(self, *args: Any, **kw: Any) -> None:
        self._conn.create_function(*args, **kw)

    def stop(self) -> None:
        self._connection = None
        self._conn.close()


def connect(database: str, **kwargs: Any) -> Connection:
    kwargs.setdefault("check_same_thread", False)  # BEGIN IMMEDIATE runs on a helper thread
    return Connection(sqlite3.connect(database, **kwargs))


def _module() -> SimpleNamespace:
    names = (
        "DatabaseError", "Error", "IntegrityError", "NotSupportedError", "OperationalError",
        "ProgrammingError", "sqlite_version", "sqlite_version_info",
    )  # fmt: skip
    return SimpleNamespace(
        connect=connect, Connection=Connection, **{n: getattr(sqlite3, n) for n in names}
    )


def dbapi() -> AsyncAdapt_aiosqlite_dbapi:
    """The DBAPI to pass as ``module=`` to create_async_engine for a sqlite+aiosqlite URL."""
    return AsyncAdapt_aiosqlite_dbapi(_module(), sqlite3)  # type: ignore[arg-type]

"""The request path on PostgreSQL: asyncpg connections of our own, kept open and reused.

asyncpg rather than psycopg here: the same lookup costs about 26 µs of this process's CPU per
statement against psycopg's 70 (BENCHMARKS.md, "The PostgreSQL request path"); psycopg stays for
the ORM's cold paths, procrastinate and LISTEN.

A fixed number of connections, opened on demand and never closed under load (a pool that opens
and drops overflow connections costs the server a fork each time). Reads run in autocommit, one
round trip each; asyncpg prepares each statement once per connection and keeps it. A write runs
in one transaction. A connection found broken (the server restarted, a proxy dropped it) is
replaced; a read is retried once on the new one, instead of pinging before every use.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Awaitable, Callable
from functools import cache
from typing import Any, TypeVar

import asyncpg
from sqlalchemy.engine import make_url

from imagegate.db.sql import NO_PARAMS, Params, Row, Tx

T = TypeVar("T")
# What a dropped connection raises: the server shut it down or went away, or the socket did.
# (A connection the server shut down while it was idle can also report a protocol state it
# cannot leave: InternalClientError.)
DROPPED = (
    asyncpg.InternalClientError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.CannotConnectNowError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    OSError,
)


def rolled_back(exc: Exception) -> bool:
    """An error the server reported for a statement (which it rolled back), not a dropped
    connection."""
    return isinstance(exc, asyncpg.PostgresError) and not isinstance(exc, DROPPED)


def conninfo(url: str) -> str:
    """A libpq connection string (psycopg, asyncpg) from the SQLAlchemy URL."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


_NAME = re.compile(r"(?<![:\w]):(\w+)")


@cache
def positional(sql: str) -> tuple[str, tuple[str, ...]]:
    """``sql`` with ``:name`` parameters as ``$1``, ``$2``…, and the names in that order
    (computed once per statement)."""
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        if match[1] not in names:
            names.append(match[1])
        return f"${names.index(match[1]) + 1}"

    return _NAME.sub(number, sql), tuple(names)


class PgTx:
    def __init__(self, conn: asyncpg.Connection, statements: int | None = None) -> None:
        self._conn = conn
        self._left = statements  # None: any number
        self.hooks: list[Callable[[], None]] = []
        self.dialect = "postgresql"

    async def one(self, sql: str, params: Params = NO_PARAMS) -> Row | None:
        row = await self._conn.fetchrow(*self._bound(sql, params))
        return None if row is None else tuple(row)

    async def all(self, sql: str, params: Params = NO_PARAMS) -> list[Row]:
        return [tuple(row) for row in await self._conn.fetch(*self._bound(sql, params))]

    async def run(self, sql: str, params: Params = NO_PARAMS) -> None:
        await self._conn.execute(*self._bound(sql, params))

    def _bound(self, sql: str, params: Params) -> tuple[Any, ...]:
        if self._left is not None:
            if self._left == 0:
                raise RuntimeError("a one-statement write ran a second statement: " + sql)
            self._left -= 1
        text, names = positional(sql)
        return (text, *(params[name] for name in names))

    def after_commit(self, hook: Callable[[], None]) -> None:
        self.hooks.append(hook)


class PgHot:
    def __init__(self, url: str, size: int) -> None:
        self._conninfo = conninfo(url)
        # Last in, first out: the connection used last is used next, so a light load keeps
        # reusing one or two warm connections (statements prepared) and opens another only when
        # those are busy; first in, first out opened all of them, one per early request.
        self._idle: asyncio.Queue[asyncpg.Connection | None] = asyncio.LifoQueue()
        for _ in range(size):
            self._idle.put_nowait(None)
        self._closing: set[asyncio.Task[None]] = set()

    async def read(self, op: Callable[[Tx], Awaitable[T]]) -> T:
        for attempt in (1, 2):
            conn = await self._checkout()
            try:
                return await op(PgTx(conn))
            except DROPPED:
                conn.terminate()  # never reused (checkin discards it)
                self._drop_idle()  # dropped: so, likely, are the idle ones (a server restart)
                if attempt == 2:
                    raise
            except asyncio.CancelledError:
                conn.terminate()  # its statement may still be running: never reuse it
                raise
            finally:
                self._checkin(conn)
        raise AssertionError("unreachable")

    async def write(self, op: Callable[[Tx], Awaitable[T]], *, one_statement: bool = False) -> T:
        """Run ``op`` in one transaction; ``one_statement``: its one statement on its own,
        without BEGIN and COMMIT (Database.write)."""
        conn = await self._checkout()
        tx = PgTx(conn, 1 if one_statement else None)
        try:
            if one_statement:
                result = await op(tx)
            else:
                async with conn.transaction():
                    result = await op(tx)
        except DROPPED:  # this write fails; the next ones get fresh connections
            conn.terminate()
            self._drop_idle()
            raise
        except asyncio.CancelledError:
            conn.terminate()  # mid-statement or mid-rollback: never reuse it
            raise
        finally:
            self._checkin(conn)
        for hook in tx.hooks:
            hook()
        return result

    async def close(self) -> None:
        while not self._idle.empty():
            conn = self._idle.get_nowait()
            if conn is not None:
                await _close_quietly(conn)

    def _drop_idle(self) -> None:
        """Close the idle connections: the next checkouts open fresh ones."""
        items = []
        while not self._idle.empty():
            items.append(self._idle.get_nowait())
        for conn in items:
            if conn is None:
                self._idle.put_nowait(None)
            else:
                self._discard(conn)

    def _discard(self, conn: asyncpg.Connection) -> None:
        closing = asyncio.get_running_loop().create_task(_close_quietly(conn))
        self._closing.add(closing)
        closing.add_done_callback(self._closing.discard)
        self._idle.put_nowait(None)

    async def _checkout(self) -> asyncpg.Connection:
        conn = await self._idle.get()  # None: a free slot, to open a connection in
        if conn is not None:
            return conn
        try:
            connected: asyncpg.Connection = await asyncpg.connect(self._conninfo)
            return connected
        except BaseException:
            self._idle.put_nowait(None)
            raise

    def _checkin(self, conn: asyncpg.Connection) -> None:
        if conn.is_closed() or conn.is_in_transaction():
            # Dropped, or left mid-transaction by a cancelled request: never reuse it.
            self._discard(conn)
            return
        self._idle.put_nowait(conn)


async def _close_quietly(conn: asyncpg.Connection) -> None:
    with contextlib.suppress(asyncpg.PostgresError, TimeoutError, *DROPPED):
        await asyncio.wait_for(conn.close(), timeout=5)  # then terminated below
    if not conn.is_closed():
        conn.terminate()

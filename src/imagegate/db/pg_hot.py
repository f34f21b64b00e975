"""The request path on PostgreSQL: psycopg connections of our own, kept open and reused.

A fixed number of connections, opened on demand and never closed under load (a pool that opens
and drops overflow connections costs the server a fork each time). Reads run in autocommit, one
round trip; psycopg prepares a statement once it has run a few times on a connection. A write runs
in pipeline mode: its statements travel together and wait only where a result is read. A
connection found broken (the server restarted, a proxy dropped it) is replaced; a read is retried
once on the new one, instead of pinging before every use.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import psycopg
from psycopg.pq import TransactionStatus
from sqlalchemy.engine import make_url

from imagegate.db.sql import NO_PARAMS, Params, Row, Tx, pyformat

T = TypeVar("T")
IDLE = TransactionStatus.IDLE


def conninfo(url: str) -> str:
    """A psycopg connection string from the SQLAlchemy URL."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class PgTx:
    def __init__(self, conn: psycopg.AsyncConnection[Any]) -> None:
        self._conn = conn
        self.hooks: list[Callable[[], None]] = []
        self.dialect = "postgresql"

    async def one(self, sql: str, params: Params = NO_PARAMS) -> Row | None:
        cursor = await self._conn.execute(pyformat(sql), params)
        row: Row | None = await cursor.fetchone()
        return row

    async def all(self, sql: str, params: Params = NO_PARAMS) -> list[Row]:
        cursor = await self._conn.execute(pyformat(sql), params)
        return await cursor.fetchall()

    async def run(self, sql: str, params: Params = NO_PARAMS) -> None:
        await self._conn.execute(pyformat(sql), params)

    def after_commit(self, hook: Callable[[], None]) -> None:
        self.hooks.append(hook)


class PgHot:
    def __init__(self, url: str, size: int) -> None:
        self._conninfo = conninfo(url)
        self._idle: asyncio.Queue[psycopg.AsyncConnection[Any] | None] = asyncio.Queue()
        for _ in range(size):
            self._idle.put_nowait(None)
        self._closing: set[asyncio.Task[None]] = set()

    async def read(self, op: Callable[[Tx], Awaitable[T]]) -> T:
        for attempt in (1, 2):
            conn = await self._checkout()
            try:
                return await op(PgTx(conn))
            except psycopg.OperationalError:
                if not conn.broken or attempt == 2:
                    raise
                self._drop_idle()  # dropped: so, likely, are the idle ones (a server restart)
            finally:
                self._checkin(conn)
        raise AssertionError("unreachable")

    async def write(self, op: Callable[[Tx], Awaitable[T]]) -> T:
        """Run ``op`` in one transaction, its statements pipelined."""
        conn = await self._checkout()
        tx = PgTx(conn)
        try:
            async with conn.pipeline(), conn.transaction():
                result = await op(tx)
        except psycopg.OperationalError:
            if conn.broken:  # this write fails; the next ones get fresh connections
                self._drop_idle()
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
                await conn.close()

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

    def _discard(self, conn: psycopg.AsyncConnection[Any]) -> None:
        closing = asyncio.get_running_loop().create_task(_close_quietly(conn))
        self._closing.add(closing)
        closing.add_done_callback(self._closing.discard)
        self._idle.put_nowait(None)

    async def _checkout(self) -> psycopg.AsyncConnection[Any]:
        conn = await self._idle.get()  # None: a free slot, to open a connection in
        if conn is not None:
            return conn
        try:
            return await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True)
        except BaseException:
            self._idle.put_nowait(None)
            raise

    def _checkin(self, conn: psycopg.AsyncConnection[Any]) -> None:
        if conn.broken or conn.closed or conn.info.transaction_status != IDLE:
            # Dropped, or left mid-transaction by a cancelled request: never reuse it.
            self._discard(conn)
            return
        self._idle.put_nowait(conn)


async def _close_quietly(conn: psycopg.AsyncConnection[Any]) -> None:
    with contextlib.suppress(psycopg.Error, OSError):
        await conn.close()

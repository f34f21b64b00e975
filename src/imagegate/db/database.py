"""One object per process that owns the engine and hands out transactions."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING, TypeVar

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from imagegate.db.engine import (
    WRITE,
    is_sqlite,
    make_engine,
    make_read_sessionmaker,
    make_sessionmaker,
)
from imagegate.db.sql import AFTER_COMMIT, Tx, after_commit
from imagegate.db.sqlite_hot import SqliteHot

if TYPE_CHECKING:
    from imagegate.db.pg_hot import PgHot

__all__ = ["Database", "after_commit"]
T = TypeVar("T")


class Database:
    def __init__(self, url: str, pool_size: int = 10, pool_overflow: int = 10) -> None:
        self.url = url
        pool = {} if is_sqlite(url) else {"pool_size": pool_size, "max_overflow": pool_overflow}
        self.engine = make_engine(url, **pool)
        # Read-only work: each statement sees the latest commit. Writes use transaction().
        self.sessions = make_read_sessionmaker(self.engine)
        self._write_sessions = make_sessionmaker(self.engine)
        self.is_sqlite = is_sqlite(url)
        # SQLite runs one writer at a time and makes the others poll with growing sleeps
        # (busy_timeout): under load most of a request's time went to those sleeps. Queuing
        # this process's writers here hands the lock over at once, in arrival order.
        self._writers = asyncio.Lock() if self.is_sqlite else None
        # The request path's explicit statements (see db/sql.py), on connections of their own.
        self._hot: SqliteHot | PgHot | None = None
        self._hot_pool = pool_size

    @property
    def dialect(self) -> str:
        """The database's kind, as Tx.dialect names it."""
        return "sqlite" if self.is_sqlite else "postgresql"

    async def read(self, op: Callable[[Tx], Awaitable[T]]) -> T:
        """``op``'s statements as autocommit reads, each seeing the latest commit."""
        return await self.hot.read(op)

    async def write(self, op: Callable[[Tx], Awaitable[T]], *, one_statement: bool = False) -> T:
        """``op``'s statements in one transaction (on SQLite, one savepoint of a group commit);
        an exception from ``op`` rolls back everything it wrote.

        ``one_statement``: on PostgreSQL ``op`` runs exactly one statement, atomic on its own,
        so it is sent without BEGIN and COMMIT: one round trip instead of three (a second
        statement raises before it runs)."""
        return await self.hot.write(op, one_statement=one_statement)

    def rolled_back(self, exc: Exception) -> bool:
        """Whether ``exc``, from a write on PostgreSQL, is the database's refusal of a statement,
        which kept nothing of it (not a dropped connection, after which a commit cannot be ruled
        out)."""
        if self.is_sqlite:
            return False
        from imagegate.db.pg_hot import rolled_back

        return rolled_back(exc)

    @property
    def hot(self) -> SqliteHot | PgHot:
        if self._hot is None:  # made on first use, inside the running event loop
            if self._writers is not None:
                database = make_url(self.url).database or ""
                self._hot = SqliteHot(database, self._writers)
            else:
                from imagegate.db.pg_hot import PgHot  # psycopg stays off the SQLite path

                self._hot = PgHot(self.url, self._hot_pool)
        return self._hot

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session in one transaction: committed on success, rolled back on error.

        Callbacks a service put in ``session.info["after_commit"]`` run after the commit.
        """
        async with AsyncExitStack() as stack:
            if self._writers is not None:
                await stack.enter_async_context(self._writers)
            session = await stack.enter_async_context(self._write_sessions())
            async with session.begin():
                await session.connection(execution_options=WRITE)  # BEGIN IMMEDIATE on SQLite
                yield session
        for hook in session.info.pop(AFTER_COMMIT, []):
            hook()

    async def dispose(self) -> None:
        if self._hot is not None:
            await self._hot.close()
        await self.engine.dispose()

"""One object per process that owns the engine and hands out transactions."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncSession

from imagegate.db.engine import is_sqlite, make_engine, make_sessionmaker

AFTER_COMMIT = "after_commit"


class Database:
    def __init__(self, url: str, pool_size: int = 10, pool_overflow: int = 10) -> None:
        self.url = url
        pool = {} if is_sqlite(url) else {"pool_size": pool_size, "max_overflow": pool_overflow}
        self.engine = make_engine(url, **pool)
        self.sessions = make_sessionmaker(self.engine)
        self.is_sqlite = is_sqlite(url)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session in one transaction: committed on success, rolled back on error.

        Callbacks a service put in ``session.info["after_commit"]`` run after the commit.
        """
        async with self.sessions() as session:
            async with session.begin():
                yield session
            for hook in session.info.pop(AFTER_COMMIT, []):
                hook()

    async def dispose(self) -> None:
        await self.engine.dispose()


def after_commit(session: AsyncSession, hook: Callable[[], None]) -> None:
    session.info.setdefault(AFTER_COMMIT, []).append(hook)

"""The request path's first read: the caller (keys/store.py) with what its request needs, in one
statement. On PostgreSQL the reads of requests that arrive together go in one statement
(db/grouped.py), each request's row found by its place; SQLite reads inline, with no round trip
to share.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from imagegate.db.database import Database
from imagegate.db.grouped import Grouped
from imagegate.db.sql import Row, Tx
from imagegate.tasks import store

Asked = TypeVar("Asked")

# Reads per statement, at most (each a key hash, and a task id for GET).
READS_PER_STATEMENT = 64


class CallerReads:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._creators = self._grouped(store.creators)
        self._with_tasks = self._grouped(store.callers_and_tasks)

    async def creator(self, key_hash: str) -> Row | None:
        """tasks/store.py's creator()."""
        if self._creators is None:
            return await self._db.read(lambda tx: store.creator(tx, key_hash))
        return await self._creators.submit(key_hash)

    async def caller_and_task(self, key_hash: str, task_id: str) -> Row | None:
        """tasks/store.py's caller_and_task()."""
        if self._with_tasks is None:
            return await self._db.read(lambda tx: store.caller_and_task(tx, key_hash, task_id))
        return await self._with_tasks.submit((key_hash, task_id))

    def _grouped(
        self, many: Callable[[Tx, Sequence[Asked]], Awaitable[list[Row | None]]]
    ) -> Grouped[Asked, Row | None] | None:
        if self._db.is_sqlite:
            return None

        async def read(asked: Sequence[Asked]) -> list[Row | None]:
            return await self._db.read(lambda tx: many(tx, asked))

        return Grouped(read, READS_PER_STATEMENT)

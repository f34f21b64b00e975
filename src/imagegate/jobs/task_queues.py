"""The task queues a PostgreSQL worker takes when it is not told which: procrastinate listens to
named queues only, while operators add models with queues of their own at any time.

At start the worker takes the queues the catalogue names and every queue that holds a waiting or
running job (a model moved to another queue leaves its jobs behind in the old one). Then
``QueueFollower`` looks every few seconds for a queue that appeared since, and starts a pool for
it: the pools already running keep their jobs (a restarted pool would cut short generations in
progress). On SQLite the table worker takes every queue but callbacks, so none of this is needed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from imagegate.db.sql import Tx

log = logging.getLogger(__name__)
FOLLOW_EVERY = 5.0  # seconds

_WAITING = "SELECT DISTINCT queue_name FROM procrastinate_jobs WHERE status IN ('todo', 'doing')"


async def waiting_queues(tx: Tx) -> set[str]:
    """The queues of procrastinate's jobs that wait or run."""
    return {str(row[0]) for row in await tx.all(_WAITING)}


class QueueFollower:
    """Starts a pool (``start``) for each queue ``find`` names that no pool takes yet."""

    def __init__(
        self,
        find: Callable[[], Awaitable[set[str]]],
        covered: set[str],
        start: Callable[[list[str]], None],
        every: float = FOLLOW_EVERY,
    ) -> None:
        self.find, self.covered, self.start, self.every = find, set(covered), start, every

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.every)
            try:
                new = await self.find() - self.covered
            except Exception:  # the database is away: look again next time
                log.warning("could not read the task queues; trying again", exc_info=True)
                continue
            if new:
                log.info("new task queue(s) %s: a worker pool takes them", ", ".join(sorted(new)))
                self.start(sorted(new))
                self.covered |= new

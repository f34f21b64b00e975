"""Keys' last_used_at, kept current without a write per request: requests note the time in
memory, and a background loop writes the notes in one batch every few seconds."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sqlalchemy import update

from imagegate.db.database import Database
from imagegate.db.models import ApiKey

log = logging.getLogger(__name__)


class KeyUsage:
    def __init__(self, db: Database, interval: float) -> None:
        self._db = db
        self._interval = interval
        self._seen: dict[str, float] = {}
        self._loop: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    def seen(self, key_id: str, now: float) -> None:
        """Note a request of ``key_id`` (no I/O: the hot path only writes a dict entry)."""
        self._seen[key_id] = now

    async def flush(self) -> None:
        """Write the noted times, one UPDATE per key in one transaction."""
        batch, self._seen = self._seen, {}
        if not batch:
            return
        async with self._db.transaction() as session:
            await session.execute(
                update(ApiKey),
                [{"id": key_id, "last_used_at": at} for key_id, at in batch.items()],
            )

    def start(self) -> None:
        self._loop = asyncio.create_task(self._run(), name="key-usage")

    async def stop(self) -> None:
        """End the loop (never in the middle of a write) and write what is left."""
        self._stopping.set()
        if self._loop is not None:
            await self._loop
        with contextlib.suppress(Exception):  # the database may already be gone on shutdown
            await self.flush()

    async def _run(self) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._interval)
            try:
                await self.flush()
            except Exception:  # a database hiccup must not end the loop; the next batch retries
                log.warning("could not record keys' last use", exc_info=True)

"""The job that delivers one callback attempt and plans the next."""

from __future__ import annotations

import logging
from typing import Any

import httpx

from imagegate import __version__
from imagegate.callbacks import service, store
from imagegate.callbacks.delivery import post_callback
from imagegate.callbacks.signing import event_id, signature_headers
from imagegate.clock import Clock
from imagegate.config import Settings
from imagegate.db.database import Database
from imagegate.jobs.kinds import JobKind
from imagegate.jobs.queue import JobQueue
from imagegate.metrics import record
from imagegate.tasks.presenter import task_json

log = logging.getLogger(__name__)


class CallbackDeliverer:
    def __init__(
        self,
        db: Database,
        queue: JobQueue,
        http: httpx.AsyncClient,
        clock: Clock,
        settings: Settings,
    ) -> None:
        self.db, self.queue, self.http, self.clock, self.settings = db, queue, http, clock, settings

    def job_kind(self) -> JobKind:
        return JobKind(handler=self.run, give_up=self.give_up)

    async def give_up(self, args: dict[str, Any], error: str) -> None:
        async with self.db.transaction() as session:
            await service.give_up(session, args["task_id"])

    async def run(self, args: dict[str, Any]) -> None:
        """Attempt number ``args["number"]`` for ``args["task_id"]``; a repeat run is a no-op."""
        task_id, number = args["task_id"], int(args["number"])
        found = await self.db.read(lambda tx: store.due(tx, task_id, number))
        if found is None or found.status != "pending" or found.attempted:
            return
        secret = found.secret or await self._first_secret(found.account_id)
        body = task_json(found.task, self.settings.resolved_public_url)
        now = self.clock.now()
        result = await post_callback(
            self.http, found.url, body, self._headers(found, task_id, secret, int(now), body),
            time_limit=self.settings.callback_timeout,
        )  # fmt: skip
        attempt = store.Attempt(task_id, number, now, result.status_code, result.error)
        delays = self.settings.callback_retry_delays
        status = await self.db.write(
            lambda tx: service.record_attempt(tx, self.queue, attempt, result.delivered, delays)
        )
        outcome = "retry" if status == "pending" else status
        record.callback_attempt(outcome)
        log.info(
            "callback attempt %s for task %s: %s (%s)",
            number, task_id, outcome, result.status_code or result.error,
        )  # fmt: skip

    async def _first_secret(self, account_id: str) -> str:
        """The account's signing secret, made now: its first signed message."""
        async with self.db.transaction() as session:
            return await service.webhook_secret(session, account_id)

    def _headers(
        self, callback: store.Due, task_id: str, secret: str, timestamp: int, body: bytes
    ) -> dict[str, str]:
        return {
            "Content-Type": "application/json",
            "User-Agent": f"imagegate-callbacks/{__version__}",
            "X-Event": callback.event,
            "X-Task-Id": task_id,
            "X-Timestamp": str(timestamp),
            **signature_headers(secret, event_id(task_id), timestamp, body),
        }

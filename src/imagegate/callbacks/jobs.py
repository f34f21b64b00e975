"""The job that delivers one callback attempt and plans the next."""

from __future__ import annotations

import logging
from typing import Any

import httpx
from sqlalchemy import select

from imagegate import __version__
from imagegate.callbacks import service
from imagegate.callbacks.delivery import post_callback
from imagegate.callbacks.signing import event_id, signature_headers
from imagegate.clock import Clock
from imagegate.config import Settings
from imagegate.db.database import Database
from imagegate.db.models import Callback, CallbackAttempt, Task
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
        async with self.db.transaction() as session:
            callback = await session.get(Callback, task_id)
            task = await session.get(Task, task_id)
            done = await session.scalar(
                select(CallbackAttempt.id).where(
                    CallbackAttempt.task_id == task_id, CallbackAttempt.number == number
                )
            )
            if callback is None or task is None or callback.status != "pending" or done:
                return
            secret = await service.webhook_secret(session, task.account_id)
        body = task_json(task, self.settings.resolved_public_url)
        now = self.clock.now()
        result = await post_callback(
            self.http, callback.url, body, self._headers(callback, secret, int(now), body),
            time_limit=self.settings.callback_timeout,
        )  # fmt: skip
        attempt = CallbackAttempt(
            task_id=task_id,
            number=number,
            attempted_at=now,
            status_code=result.status_code,
            error=result.error,
        )
        async with self.db.transaction() as session:
            moved = await service.record_attempt(
                session, self.queue, attempt, result.delivered, self.settings.callback_retry_delays
            )
        outcome = "retry" if moved.status == "pending" else moved.status
        record.callback_attempt(outcome)
        log.info(
            "callback attempt %s for task %s: %s (%s)",
            number, task_id, outcome, result.status_code or result.error,
        )  # fmt: skip

    def _headers(
        self, callback: Callback, secret: str, timestamp: int, body: bytes
    ) -> dict[str, str]:
        return {
            "Content-Type": "application/json",
            "User-Agent": f"imagegate-callbacks/{__version__}",
            "X-Event": callback.event,
            "X-Task-Id": callback.task_id,
            "X-Timestamp": str(timestamp),
            **signature_headers(secret, event_id(callback.task_id), timestamp, body),
        }

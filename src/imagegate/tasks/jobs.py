"""The job that runs a task: call its provider, store the images, finish the task."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from imagegate.callbacks import service as callbacks
from imagegate.catalog import SIZES
from imagegate.clock import Clock
from imagegate.db.database import Database
from imagegate.db.models import Task
from imagegate.jobs.kinds import JobKind
from imagegate.jobs.queue import JobQueue
from imagegate.providers.base import GenerationRequest, ProviderError
from imagegate.providers.routing import ProviderRouter
from imagegate.storage.local import LocalImageStore
from imagegate.tasks import service

log = logging.getLogger(__name__)
GAVE_UP_MESSAGE = "Image generation failed"


class TaskRunner:
    def __init__(
        self,
        db: Database,
        queue: JobQueue,
        providers: ProviderRouter,
        store: LocalImageStore,
        clock: Clock,
        callback_delays: Sequence[float],
    ) -> None:
        self.db, self.queue, self.providers, self.store = db, queue, providers, store
        self.clock, self.callback_delays = clock, callback_delays

    def job_kind(self) -> JobKind:
        return JobKind(handler=self.run, give_up=self.give_up)

    async def run(self, args: dict[str, Any]) -> None:
        """Run one task. Safe to run twice: a final task is left alone."""
        task_id = args["task_id"]
        async with self.db.transaction() as session:
            task = await service.start(session, task_id, self.clock.now())
        if task is None:
            return
        try:
            images = await self.providers.generate(task.model, _request(task))
        except ProviderError as exc:
            log.info("task %s failed upstream: %s (%s)", task_id, exc.message, exc.detail)
            await self._fail(task_id, exc.code, exc.message)
            return
        keys = [await self.store.save(image, self.clock.now()) for image in images]
        async with self.db.transaction() as session:
            ended = await service.complete(session, task_id, keys, self.clock.now())
            await self._notify(session, ended)

    async def give_up(self, args: dict[str, Any], error: str) -> None:
        """After the last attempt: the task fails with internal_error and is refunded."""
        await self._fail(args["task_id"], "internal_error", GAVE_UP_MESSAGE)

    async def _fail(self, task_id: str, code: str, message: str) -> None:
        async with self.db.transaction() as session:
            ended = await service.fail(session, task_id, code, message, self.clock.now())
            await self._notify(session, ended)

    async def _notify(self, session: AsyncSession, ended: Task | None) -> None:
        """Plan the callback of a task that just ended, in the transaction that ended it."""
        if ended is not None and ended.callback_url:
            await callbacks.schedule(
                session, self.queue, ended.id, ended.callback_url, ended.status,
                self.callback_delays, self.clock.now(),
            )  # fmt: skip


def _request(task: Task) -> GenerationRequest:
    width, height = SIZES[task.input["size"]]
    return GenerationRequest(
        task_id=task.id,
        prompt=task.input["prompt"],
        size=task.input["size"],
        width=width,
        height=height,
        rendering_speed=task.input["rendering_speed"],
        output_format=task.input["output_format"],
    )

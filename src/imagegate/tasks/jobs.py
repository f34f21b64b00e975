"""The job that runs a task: call its provider, store the images, finish the task."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from imagegate.catalog import SIZES, CatalogModel
from imagegate.catalog.cache import Catalogue
from imagegate.clock import Clock
from imagegate.db.database import Database
from imagegate.db.sql import SessionTx, Tx
from imagegate.jobs.kinds import JobKind
from imagegate.jobs.queue import JobQueue
from imagegate.metrics import record
from imagegate.providers.base import GenerationRequest, ProviderError
from imagegate.providers.routing import Generated, ProviderRouter
from imagegate.storage.base import ImageStore
from imagegate.tasks import service
from imagegate.tasks import store as tasks_store
from imagegate.tasks.status import EndedTask, TaskStatus
from imagegate.tasks.store import RunTask
from imagegate.tasks.watch import TaskWatch

log = logging.getLogger(__name__)
GAVE_UP_MESSAGE = "Image generation failed"


class TaskRunner:
    def __init__(
        self,
        db: Database,
        queue: JobQueue,
        providers: ProviderRouter,
        store: ImageStore,
        clock: Clock,
        callback_delays: Sequence[float],
        watch: TaskWatch,
        catalog: Catalogue | None = None,
    ) -> None:
        self.db, self.queue, self.providers, self.store = db, queue, providers, store
        self.watch = watch
        self.catalog = catalog or Catalogue(db)
        self.clock, self.callback_delays = clock, callback_delays

    def job_kind(self) -> JobKind:
        return JobKind(handler=self.run, give_up=self.give_up)

    async def run(self, args: dict[str, Any]) -> None:
        """Run one task. Safe to run twice: a final task is left alone."""
        task_id = args["task_id"]
        task = await self.db.write(
            lambda tx: service.start(tx, task_id, self.clock.now()), one_statement=True
        )
        if task is None:
            return
        try:
            generated = await self._generate_unless_ended(task)
        except ProviderError as exc:
            log.info("task %s failed upstream: %s (%s)", task_id, exc.message, exc.detail)
            await self._fail(task_id, exc.code, exc.message, exc.provider)
            return
        if generated is None:
            log.info("task %s ended while it ran (cancelled); its run stopped", task_id)
            return
        keys = [await self.store.save(image, self.clock.now()) for image in generated.images]

        async def complete(tx: Tx) -> RunTask | None:
            now = self.clock.now()
            return await service.complete(tx, self.queue, task_id, keys, now, self.callback_delays)

        ended = await self.db.write(complete, one_statement=True)
        if ended is not None:
            record.task_ended(ended, generated.provider)
            log.info("task %s completed by %s", task_id, generated.provider)

    async def _generate_unless_ended(self, task: RunTask) -> Generated | None:
        """The provider's images; or None when the task ended meanwhile (it was cancelled):
        the provider's call is then cancelled, which stops its work where it can."""
        model = await self._model(task)
        async with self.watch.watching(task.id) as changes:
            generating = asyncio.ensure_future(self.providers.generate(model, _request(task)))
            try:
                while True:
                    changes.seen(TaskStatus.PROCESSING)
                    woken = asyncio.ensure_future(changes.event.wait())
                    await asyncio.wait((generating, woken), return_when=asyncio.FIRST_COMPLETED)
                    woken.cancel()
                    if generating.done():
                        return generating.result()
                    changes.event.clear()
                    if await self._ended(task.id):
                        return None
            finally:
                generating.cancel()

    async def _model(self, task: RunTask) -> CatalogModel:
        """The task's model as the catalogue had it when the run started (its route may have
        changed since the task was created; a deactivated model's accepted tasks still run)."""
        version = task.catalog_version
        models = await (self.catalog.fresh() if version is None else self.catalog.at(version))
        found = models.get(task.model)
        return found or CatalogModel(
            name=task.model, title=task.model, prices={}, reports=task.model
        )

    async def _ended(self, task_id: str) -> bool:
        found = await self.db.read(lambda tx: tasks_store.statuses(tx, [task_id]))
        return found.get(task_id) != TaskStatus.PROCESSING

    async def give_up(self, args: dict[str, Any], error: str) -> None:
        """After the last attempt: the task fails with internal_error and is refunded."""
        await self._fail(args["task_id"], "internal_error", GAVE_UP_MESSAGE)

    async def _fail(self, task_id: str, code: str, message: str, provider: str = "") -> None:
        async with self.db.transaction() as session:
            ended = await service.fail(session, task_id, code, message, self.clock.now())
            await self._notify(SessionTx(session), ended)
        if ended is not None:
            record.task_ended(ended, provider)

    async def _notify(self, tx: Tx, ended: EndedTask | None) -> None:
        if ended is not None:
            await service.plan_callback(
                tx, self.queue, ended, self.callback_delays, self.clock.now()
            )


def _request(task: RunTask) -> GenerationRequest:
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

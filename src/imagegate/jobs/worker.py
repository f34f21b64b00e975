"""The worker: claims due jobs, runs their handlers concurrently, survives crashes.

At-least-once: a claimed job is marked ``doing`` with a heartbeat; if the process dies, any worker
puts jobs with a stale heartbeat back to ``todo``. Handlers therefore must be idempotent (the task
state machine is compare-and-set and ledger rows are unique). A handler that raises is retried
with backoff; after ``max_attempts`` its ``give_up`` runs and the job is marked failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, delete, select, update

from imagegate.clock import Clock
from imagegate.db.database import Database
from imagegate.db.models import Job
from imagegate.jobs.queue import JobQueue
from imagegate.jobs.status import JobStatus

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], Awaitable[None]]
GiveUp = Callable[[dict[str, Any], str], Awaitable[None]]


@dataclass(frozen=True)
class JobKind:
    handler: Handler
    give_up: GiveUp | None = None


@dataclass(frozen=True)
class WorkerConfig:
    concurrency: int = 32
    poll_interval: float = 0.5
    stall_seconds: float = 30.0
    max_attempts: int = 5
    timeout: float = 600.0
    queues: tuple[str, ...] | None = None  # None: every queue...
    exclude_queues: tuple[str, ...] = ()  # ...but these


class Worker:
    def __init__(
        self,
        db: Database,
        queue: JobQueue,
        kinds: dict[str, JobKind],
        clock: Clock,
        config: WorkerConfig,
    ) -> None:
        self.db, self.queue, self.kinds, self.clock, self.config = db, queue, kinds, clock, config
        self.id = f"worker-{uuid.uuid4().hex[:12]}"
        self._running: dict[int, asyncio.Task[None]] = {}
        self._loops: list[asyncio.Task[None]] = []
        self._wakeup = queue.listen()

    def describe(self) -> str:
        queues = ",".join(self.config.queues) if self.config.queues is not None else "all"
        if self.config.exclude_queues:
            queues += " except " + ",".join(self.config.exclude_queues)
        return f"{self.id} [{queues}] x{self.config.concurrency}"

    def start(self) -> None:
        self._loops = [
            asyncio.create_task(self._fetch_loop(), name=f"{self.id}-fetch"),
            asyncio.create_task(self._maintenance_loop(), name=f"{self.id}-maintenance"),
        ]

    async def stop(self, grace: float = 5.0) -> None:
        """Stop claiming, let running jobs finish for ``grace`` seconds, then hand the rest back."""
        for loop in self._loops:
            loop.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)
        if self._running:
            await asyncio.wait(list(self._running.values()), timeout=grace)
        leftover = list(self._running)
        for job in self._running.values():
            job.cancel()
        await asyncio.gather(*self._running.values(), return_exceptions=True)
        if leftover:
            await self._release(leftover)

    async def _fetch_loop(self) -> None:
        while True:
            # Cleared before the claim: a job committed while claiming sets it again, so the
            # wait below returns at once instead of after a poll interval.
            self._wakeup.clear()
            free = self.config.concurrency - len(self._running)
            claimed = await self._guarded(self._claim, free) if free > 0 else []
            for job_id, kind, args, attempts in claimed or []:
                task = asyncio.create_task(self._execute(job_id, kind, args, attempts))
                self._running[job_id] = task
                task.add_done_callback(functools.partial(self._forget, job_id))
            if claimed and len(claimed) == free:
                await asyncio.sleep(0)  # more may be due; yield and fetch again
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), self.config.poll_interval)

    def _forget(self, job_id: int, _task: asyncio.Task[None]) -> None:
        was_full = len(self._running) >= self.config.concurrency
        self._running.pop(job_id, None)
        if was_full:
            self._wakeup.set()  # a slot is free again: jobs that waited for one may be due

    async def _claim(self, limit: int) -> list[tuple[int, str, dict[str, Any], int]]:
        conditions = [Job.status == JobStatus.TODO, Job.run_at <= self.clock.now(), *self._mine()]
        async with self.db.transaction() as session:
            rows = (
                await session.execute(
                    select(Job.id, Job.kind, Job.args, Job.attempts)
                    .where(*conditions)
                    .order_by(Job.run_at, Job.id)
                    .limit(limit)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            if rows:
                # Stamped now that the rows are locked: a lock wait must not age the heartbeat.
                await session.execute(
                    update(Job)
                    .where(Job.id.in_([row.id for row in rows]))
                    .values(
                        status=JobStatus.DOING,
                        worker_id=self.id,
                        heartbeat_at=self.clock.now(),
                        attempts=Job.attempts + 1,
                    )
                )
        return [(row.id, row.kind, row.args, row.attempts + 1) for row in rows]

    async def _execute(self, job_id: int, kind: str, args: dict[str, Any], attempt: int) -> None:
        job_kind = self.kinds.get(kind)
        try:
            if job_kind is None:
                raise LookupError(f"no handler for job kind {kind!r}")
            if attempt > self.config.max_attempts:
                raise RuntimeError("too many attempts (the job kept crashing its worker)")
            async with asyncio.timeout(self.config.timeout):
                await job_kind.handler(args)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("job %s (%s) attempt %s failed", job_id, kind, attempt)
            await self._guarded(self._after_failure, job_id, job_kind, args, attempt, repr(exc))
            return
        await self._guarded(self._finish, job_id)

    async def _finish(self, job_id: int) -> None:
        async with self.db.transaction() as session:
            await session.execute(delete(Job).where(Job.id == job_id, Job.worker_id == self.id))

    async def _after_failure(
        self, job_id: int, job_kind: JobKind | None, args: dict[str, Any], attempt: int, error: str
    ) -> None:
        if job_kind is None:
            # A kind this (older?) worker does not know: hand it back for one that does.
            values: dict[str, Any] = {
                "status": JobStatus.TODO,
                "run_at": self.clock.now() + 60.0,
                "attempts": Job.attempts - 1,
            }
        elif attempt < self.config.max_attempts:
            backoff = min(2.0**attempt, 60.0)
            values = {"status": JobStatus.TODO, "run_at": self.clock.now() + backoff}
        else:
            if job_kind.give_up is not None:
                await job_kind.give_up(args, error)
            values = {"status": JobStatus.FAILED}
        async with self.db.transaction() as session:
            await session.execute(
                update(Job)
                .where(Job.id == job_id, Job.worker_id == self.id)
                .values(worker_id=None, last_error=error[:2000], **values)
            )

    async def _release(self, job_ids: list[int]) -> None:
        async with self.db.transaction() as session:
            await session.execute(
                update(Job)
                .where(Job.id.in_(job_ids), Job.worker_id == self.id, Job.status == JobStatus.DOING)
                .values(status=JobStatus.TODO, worker_id=None, attempts=Job.attempts - 1)
            )

    async def _maintenance_loop(self) -> None:
        interval = self.config.stall_seconds / 3
        while True:
            await self._guarded(self._heartbeat_and_recover)
            await asyncio.sleep(interval)

    async def _heartbeat_and_recover(self) -> None:
        async with self.db.transaction() as session:
            if self._running:
                await session.execute(
                    update(Job)
                    .where(Job.id.in_(list(self._running)), Job.worker_id == self.id)
                    .values(heartbeat_at=self.clock.now())
                )
            # A job is stalled when its heartbeat is old and it is not running here: a dead
            # worker's, or ours when its bookkeeping failed (the database refused, say). The set
            # of running jobs is read now, with the lock held, so a job claimed meanwhile counts.
            stalled = [
                Job.status == JobStatus.DOING,
                Job.id.not_in(list(self._running)),
                Job.heartbeat_at < self.clock.now() - self.config.stall_seconds,
                *self._mine(),
            ]
            recovered = await session.execute(
                update(Job).where(*stalled).values(status=JobStatus.TODO, worker_id=None)
            )
        if recovered.rowcount:  # type: ignore[attr-defined]
            log.warning("recovered %s stalled job(s)", recovered.rowcount)  # type: ignore[attr-defined]
            self.queue.wake()

    def _mine(self) -> list[ColumnElement[bool]]:
        """Conditions for the jobs of this worker's queues."""
        conditions: list[ColumnElement[bool]] = []
        if self.config.queues is not None:
            conditions.append(Job.queue.in_(self.config.queues))
        if self.config.exclude_queues:
            conditions.append(Job.queue.not_in(self.config.exclude_queues))
        return conditions

    async def _guarded(self, func: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        """Run a bookkeeping step; a database hiccup is logged and retried on the next round."""
        try:
            return await func(*args)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("worker %s: %s failed", self.id, getattr(func, "__name__", func))
            return None

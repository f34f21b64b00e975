"""The table queue's worker (embedded mode, SQLite): claims due jobs, runs them concurrently,
survives crashes. PostgreSQL runs procrastinate instead (jobs/procrastinate_worker.py); the job
kinds and the attempt rule (jobs/kinds.py) are the same.

At-least-once: a claimed job is marked ``doing`` with a heartbeat and its worker's id, which names
the host and process. At start a worker takes back at once the jobs of this host's processes that
no longer exist (the process it replaces, after a kill -9); any other stalled job (stale
heartbeat) is taken back by the maintenance loop. Handlers therefore must be idempotent (the task
state machine is compare-and-set and ledger rows are unique).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, select, update

from imagegate.clock import Clock
from imagegate.db.database import Database
from imagegate.db.models import Job
from imagegate.jobs import admin, store
from imagegate.jobs.kinds import Done, GaveUp, JobKind, Outcome, Retry, RetryPolicy, attempt
from imagegate.jobs.queue import JobQueue
from imagegate.jobs.status import JobStatus

log = logging.getLogger(__name__)
HOST = socket.gethostname()[:30]
RETENTION_EVERY = 3600.0  # seconds between deletions of old failed and cancelled jobs


@dataclass(frozen=True)
class WorkerConfig:
    concurrency: int = 32
    poll_interval: float = 0.5
    stall_seconds: float = 8.0
    policy: RetryPolicy = RetryPolicy()
    retention_days: float = 7.0
    queues: tuple[str, ...] | None = None  # None: every queue...
    exclude_queues: tuple[str, ...] = ()  # ...but these
    cleanups: tuple[admin.Cleanup, ...] = ()  # run with the jobs' retention
    grace: float = 5.0  # seconds a stopping worker lets its running jobs finish


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
        self.id = f"{HOST}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
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

    async def stop(self, grace: float | None = None) -> None:
        """Stop claiming, let running jobs finish for ``grace`` seconds (the config's by
        default), then hand the rest back."""
        grace = self.config.grace if grace is None else grace
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
        await self._guarded(self._take_back_from_dead_processes)
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
        queues, excluded = self.config.queues, self.config.exclude_queues
        # The time is read in the write, once this process holds the lock: a wait for it must
        # not age the heartbeat.
        return await self.db.write(
            lambda tx: store.claim(tx, self.id, self.clock.now(), limit, queues, excluded)
        )

    async def _execute(self, job_id: int, kind: str, args: dict[str, Any], number: int) -> None:
        if kind not in self.kinds:
            # A kind this (older?) worker does not know: hand it back for one that does.
            error = f"no handler for job kind {kind!r}"
            log.warning("job %s: %s; handed back", job_id, error)
            values: dict[str, Any] = {
                "status": JobStatus.TODO,
                "run_at": self.clock.now() + 60.0,
                "attempts": Job.attempts - 1,
                "last_error": error,
            }
        else:
            values = self._record(
                await attempt(self.kinds, kind, args, number, self.config.policy, job_id)
            )
        await self._guarded(self._update_own, job_id, values)

    def _record(self, outcome: Outcome) -> dict[str, Any]:
        """The job row's new values after an attempt (a finished job is deleted)."""
        if isinstance(outcome, Retry):
            run_at = self.clock.now() + outcome.delay
            return {"status": JobStatus.TODO, "run_at": run_at, "last_error": outcome.error}
        if isinstance(outcome, GaveUp):
            now = self.clock.now()
            return {"status": JobStatus.FAILED, "last_error": outcome.error, "finished_at": now}
        assert isinstance(outcome, Done)
        return {}

    async def _update_own(self, job_id: int, values: dict[str, Any]) -> None:
        if not values:  # done: the common case, on the request path's writer
            await self.db.write(lambda tx: store.delete_own(tx, job_id, self.id))
            return
        async with self.db.transaction() as session:
            await session.execute(
                update(Job)
                .where(Job.id == job_id, Job.worker_id == self.id)
                .values(worker_id=None, **values)
            )

    async def _take_back_from_dead_processes(self) -> None:
        """Jobs left ``doing`` by processes of this host that are gone: todo again, at once."""
        async with self.db.transaction() as session:
            owners = await session.scalars(
                select(Job.worker_id)
                .where(
                    Job.status == JobStatus.DOING, Job.worker_id.like(f"{HOST}:%"), *self._mine()
                )
                .distinct()
            )
            dead = [owner for owner in owners if owner is not None and not _alive(owner)]
            if dead:
                taken = await session.execute(
                    update(Job)
                    .where(Job.status == JobStatus.DOING, Job.worker_id.in_(dead))
                    .values(status=JobStatus.TODO, worker_id=None)
                )
                log.warning("took back %s job(s) of stopped processes", taken.rowcount)  # type: ignore[attr-defined]

    async def _release(self, job_ids: list[int]) -> None:
        async with self.db.transaction() as session:
            await session.execute(
                update(Job)
                .where(Job.id.in_(job_ids), Job.worker_id == self.id, Job.status == JobStatus.DOING)
                .values(status=JobStatus.TODO, worker_id=None, attempts=Job.attempts - 1)
            )

    async def _maintenance_loop(self) -> None:
        interval = self.config.stall_seconds / 4
        retention_due = 0.0
        while True:
            await self._guarded(self._heartbeat_and_recover)
            if self.clock.now() >= retention_due:
                retention_due = self.clock.now() + RETENTION_EVERY
                await self._guarded(self._delete_old)
            await asyncio.sleep(interval)

    async def _delete_old(self) -> None:
        async with self.db.transaction() as session:
            await admin.retention(
                session, self.config.retention_days, self.clock.now(), self.config.cleanups
            )

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


def _alive(worker_id: str) -> bool:
    """Whether the process named in a worker id (host:pid:...) of this host still runs."""
    try:
        os.kill(int(worker_id.split(":")[1]), 0)
    except (ValueError, IndexError, ProcessLookupError):
        return False
    except PermissionError:
        return True  # it exists, run by another user
    return True

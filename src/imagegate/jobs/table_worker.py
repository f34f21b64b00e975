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
from typing import Any, NotRequired, TypedDict

from imagegate.clock import Clock
from imagegate.db.database import Database
from imagegate.db.sql import Tx
from imagegate.jobs import admin, store
from imagegate.jobs.kinds import Done, GaveUp, JobKind, Outcome, Retry, RetryPolicy, attempt
from imagegate.jobs.queue import JobQueue
from imagegate.jobs.status import JobStatus

log = logging.getLogger(__name__)
HOST = socket.gethostname()[:30]
RETENTION_EVERY = 3600.0  # seconds between deletions of old failed and cancelled jobs


class Settle(TypedDict):
    """An attempt's end other than success, as jobs/store.py's settle() takes it."""

    status: str
    error: str
    run_at: NotRequired[float]
    finished_at: NotRequired[float]
    undone: NotRequired[bool]


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
            run_at = self.clock.now() + 60.0
            ended: Settle = {"status": JobStatus.TODO, "error": error, "run_at": run_at}
            await self._guarded(self._settle, job_id, ended | {"undone": True})
            return
        outcome = await attempt(self.kinds, kind, args, number, self.config.policy, job_id)
        await self._guarded(self._settle, job_id, self._record(outcome))

    def _record(self, outcome: Outcome) -> Settle | None:
        """How the job's row ends an attempt (None: it succeeded, and the row goes)."""
        if isinstance(outcome, Retry):
            run_at = self.clock.now() + outcome.delay
            return {"status": JobStatus.TODO, "error": outcome.error, "run_at": run_at}
        if isinstance(outcome, GaveUp):
            now = self.clock.now()
            return {"status": JobStatus.FAILED, "error": outcome.error, "finished_at": now}
        assert isinstance(outcome, Done)
        return None

    async def _settle(self, job_id: int, ended: Settle | None) -> None:
        if ended is None:
            await self.db.write(lambda tx: store.delete_own(tx, job_id, self.id))
        else:
            await self.db.write(lambda tx: store.settle(tx, job_id, self.id, **ended))

    async def _take_back_from_dead_processes(self) -> None:
        """Jobs left ``doing`` by processes of this host that are gone: todo again, at once."""
        queues, excluded = self.config.queues, self.config.exclude_queues

        async def take_back(tx: Tx) -> int:
            held = await store.owners(tx, f"{HOST}:", queues, excluded)
            dead = [owner for owner in held if not _alive(owner)]
            return await store.take_back(tx, dead) if dead else 0

        taken = await self.db.write(take_back)
        if taken:
            log.warning("took back %s job(s) of stopped processes", taken)

    async def _release(self, job_ids: list[int]) -> None:
        await self.db.write(lambda tx: store.release(tx, self.id, job_ids))

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
        queues, excluded = self.config.queues, self.config.exclude_queues

        async def beat_and_recover(tx: Tx) -> int:
            # The set of running jobs and the time are read here, in the write, once this
            # process holds the lock: a job claimed meanwhile counts as running.
            running, now = list(self._running), self.clock.now()
            if running:
                await store.heartbeat(tx, self.id, running, now)
            before = now - self.config.stall_seconds
            return await store.recover_stalled(tx, running, before, queues, excluded)

        recovered = await self.db.write(beat_and_recover)
        if recovered:
            log.warning("recovered %s stalled job(s)", recovered)
            self.queue.wake()

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

"""Scale-out jobs (PostgreSQL) on procrastinate: the same job kinds, run by its workers.

- Jobs are deferred by jobs/store.py inside the request's own transaction; procrastinate's insert
  trigger sends NOTIFY, so a worker in any process starts them within milliseconds.
- Each kind is a procrastinate task whose body is the shared attempt rule (jobs/kinds.py); its
  retry strategy turns the rule's outcome into procrastinate's retry (backoff) or failure (after
  ``give_up`` ran: a task failed with internal_error and refunded once).
- Two periodic tasks on the ``maintenance`` queue: jobs of workers that stopped heartbeating
  (a kill -9) are put back every few seconds, and finished jobs are deleted after the retention.
- Run times and stall detection use the database's clock (procrastinate compares with now()).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
from collections.abc import Iterable, Sequence
from typing import Any

import procrastinate
from procrastinate.job_context import JobContext
from procrastinate.jobs import Job, Notification
from procrastinate.retry import BaseRetryStrategy, RetryDecision

from imagegate.clock import Clock
from imagegate.db.database import Database
from imagegate.db.pg_hot import conninfo
from imagegate.jobs import admin
from imagegate.jobs.kinds import GaveUp, JobKind, Retry, RetryPolicy, attempt

log = logging.getLogger(__name__)
MAINTENANCE_QUEUE = "maintenance"
RECOVER_EVERY = "* * * * * */5"  # cron, seconds last: stalled jobs are looked for every 5 s
RETENTION_CRON = "17 * * * *"  # hourly
STOP_MARGIN = 5.0  # seconds past the grace that stop() waits for the pool to end


_SAVE_ERROR = (
    "INSERT INTO job_errors (job_id, error) VALUES (%(job_id)s, %(error)s)"
    " ON CONFLICT (job_id) DO UPDATE SET error = excluded.error"
)


class RetryLater(Exception):
    def __init__(self, delay: float, error: str) -> None:
        super().__init__(error)
        self.delay = delay


class FailedForGood(Exception):
    """The last attempt failed and the kind's give_up ran: no retry."""


class _Strategy(BaseRetryStrategy):
    """Retry when the attempt rule says so, after its backoff; a job cut short by a worker's
    shutdown is retried at once (another worker takes it)."""

    def get_retry_decision(self, *, exception: BaseException, job: Job) -> RetryDecision | None:
        if isinstance(exception, RetryLater):
            return RetryDecision(retry_in={"seconds": round(exception.delay)})
        if isinstance(exception, asyncio.CancelledError | procrastinate.exceptions.JobAborted):
            return RetryDecision(retry_at=datetime.datetime.now(datetime.UTC))
        return None


class _JobManager(procrastinate.manager.JobManager):
    """procrastinate's JobManager, with no lost wake-up.

    procrastinate's worker clears its new-job event after each fetch. A job deferred while a
    fetch ran, too late for that fetch to see, had its notice cleared with it, and waited for
    the next poll (bench/e2e.py: about one pickup in a hundred took the whole 0.5 s poll
    interval). Here a fetch that found nothing looks again when a notice for its queues came
    while it ran."""

    def __init__(self, connector: procrastinate.PsycopgConnector) -> None:
        super().__init__(connector)
        self._notices: dict[tuple[str, ...] | None, int] = {}  # by the queues listened to

    async def listen_for_jobs(
        self,
        *,
        on_notification: procrastinate.manager.NotificationCallback,
        queues: Iterable[str] | None = None,
    ) -> None:
        key = _queues_key(queues)

        async def counted(*, channel: str, notification: Notification) -> None:
            if notification["type"] == "job_inserted":
                self._notices[key] = self._notices.get(key, 0) + 1
            await on_notification(channel=channel, notification=notification)

        await super().listen_for_jobs(on_notification=counted, queues=queues)

    async def fetch_job(self, queues: Iterable[str] | None, worker_id: int) -> Job | None:
        key = _queues_key(queues)
        while True:
            seen = self._notices.get(key, 0)
            job = await super().fetch_job(queues, worker_id)
            if job is not None or self._notices.get(key, 0) == seen:
                return job


def _queues_key(queues: Iterable[str] | None) -> tuple[str, ...] | None:
    return None if queues is None else tuple(sorted(queues))


class ProcrastinateJobs:
    """This process's procrastinate App: the job kinds as tasks, and the periodic maintenance."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        kinds: dict[str, JobKind],
        policy: RetryPolicy,
        stall_seconds: float,
        retention_days: float,
        cleanups: Sequence[admin.Cleanup] = (),
    ) -> None:
        connector = procrastinate.PsycopgConnector(
            conninfo=conninfo(db.url), min_size=1, max_size=8
        )
        self.app = procrastinate.App(connector=connector)
        self.app.job_manager = _JobManager(connector)
        self.db, self.clock, self.kinds, self.policy = db, clock, kinds, policy
        self.stall_seconds, self.retention_days = stall_seconds, retention_days
        self.cleanups = tuple(cleanups)
        self._opened: asyncio.Task[Any] | None = None
        for name in kinds:
            self._register(name)
        self._register_maintenance()

    async def open(self) -> None:
        """Open the connection pool once, however many pools wait for it (again after a
        failed attempt)."""
        failed = (
            self._opened is not None
            and self._opened.done()
            and (self._opened.cancelled() or self._opened.exception() is not None)
        )
        if self._opened is None or failed:
            self._opened = asyncio.ensure_future(self.app.open_async())
        await asyncio.shield(self._opened)

    async def close(self) -> None:
        if self._opened is not None:
            with contextlib.suppress(Exception):
                await self._opened
            await self.app.close_async()

    def _register(self, name: str) -> None:
        async def run(context: JobContext, /, **args: Any) -> None:
            job = context.job
            number = job.attempts + 1
            outcome = await attempt(self.kinds, name, args, number, self.policy, job.id)
            if isinstance(outcome, Retry | GaveUp):  # procrastinate keeps no error text
                await self.app.connector.execute_query_async(
                    _SAVE_ERROR, job_id=job.id, error=outcome.error
                )
            if isinstance(outcome, Retry):
                raise RetryLater(outcome.delay, outcome.error)
            if isinstance(outcome, GaveUp):
                raise FailedForGood(outcome.error)

        self.app.task(name=name, pass_context=True, retry=_Strategy())(run)

    def _register_maintenance(self) -> None:
        manager = self.app.job_manager

        async def recover_stalled(timestamp: int) -> None:
            stalled = list(
                await manager.get_stalled_jobs(seconds_since_heartbeat=self.stall_seconds)
            )
            for job in stalled:
                try:
                    await manager.retry_job(job)
                except procrastinate.exceptions.ConnectorException:
                    continue  # it ended meanwhile (its worker was only slow)
                log.warning("job %s of a worker that stopped heartbeating: put back", job.id)

        async def delete_old_jobs(timestamp: int) -> None:
            async with self.db.transaction() as session:
                await admin.retention(session, self.retention_days, self.clock.now(), self.cleanups)

        for name, cron, func in (
            ("imagegate.recover_stalled", RECOVER_EVERY, recover_stalled),
            ("imagegate.delete_old_jobs", RETENTION_CRON, delete_old_jobs),
        ):
            task = self.app.task(name=name, queue=MAINTENANCE_QUEUE, queueing_lock=name)(func)
            self.app.periodic(cron=cron, periodic_id=name)(task)


class ProcrastinateWorker:
    """One pool of procrastinate workers in this process (tasks, or callbacks)."""

    def __init__(
        self,
        jobs: ProcrastinateJobs,
        name: str,
        queues: Sequence[str],
        concurrency: int,
        poll_interval: float,
        grace: float = 5.0,
    ) -> None:
        self.jobs, self.name, self.queues, self.concurrency = jobs, name, queues, concurrency
        self.poll_interval = poll_interval
        self.grace = grace  # seconds a stopping worker lets its running jobs finish
        self._task: asyncio.Task[None] | None = None

    def describe(self) -> str:
        return f"procrastinate {self.name} [{','.join(self.queues)}] x{self.concurrency}"

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"procrastinate-{self.name}")

    async def stop(self) -> None:
        """Stop fetching; running jobs get ``grace`` seconds, then are handed back."""
        if self._task is None:
            return
        self._task.cancel()
        # Bounded: the pool's own shutdown was once seen to hang when the database had just
        # dropped every connection. Its running jobs are then the stall recovery's to put back.
        done, _ = await asyncio.wait({self._task}, timeout=self.grace + STOP_MARGIN)
        if not done:
            log.warning("procrastinate worker %s did not stop within %.0f s; leaving it",
                        self.name, self.grace + STOP_MARGIN)  # fmt: skip
            return
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _run(self) -> None:
        """Run the pool; when it stops on an error (the database went away), start it again."""
        pause = 0.5
        while True:
            try:
                await self._run_once()
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("procrastinate worker %s stopped; starting it again", self.name)
                await asyncio.sleep(pause)
                pause = min(pause * 2, 10.0)

    async def _run_once(self) -> None:
        await self.jobs.open()
        stall = self.jobs.stall_seconds
        await self.jobs.app.run_worker_async(
            queues=list(self.queues),
            name=self.name,
            concurrency=self.concurrency,
            fetch_job_polling_interval=self.poll_interval,
            listen_notify=True,
            delete_jobs="successful",
            install_signal_handlers=False,
            update_heartbeat_interval=stall / 4,
            stalled_worker_timeout=stall,
            shutdown_graceful_timeout=self.grace,
        )

"""Everything a process shares: built once from Settings, closed on shutdown."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

import httpx

from imagegate.billing.alerts import DELIVER_ACCOUNT_EVENT
from imagegate.callbacks.account_events import AccountEventDeliverer
from imagegate.callbacks.jobs import CallbackDeliverer
from imagegate.callbacks.service import CALLBACKS_QUEUE, DELIVER_CALLBACK
from imagegate.catalog import DEFAULT_QUEUE
from imagegate.catalog.cache import Catalogue
from imagegate.clock import Clock
from imagegate.config import Settings
from imagegate.db.database import Database
from imagegate.db.grouped import Grouped
from imagegate.jobs.admin import Cleanup
from imagegate.jobs.kinds import JobKind, RetryPolicy
from imagegate.jobs.procrastinate_worker import (
    MAINTENANCE_QUEUE,
    ProcrastinateJobs,
    ProcrastinateWorker,
)
from imagegate.jobs.queue import JobQueue
from imagegate.jobs.table_worker import Worker, WorkerConfig
from imagegate.jobs.task_queues import QueueFollower, waiting_queues
from imagegate.keys.network import Network, parse_networks
from imagegate.keys.ratelimit import RateLimiter
from imagegate.keys.secret import load_or_create_secret
from imagegate.keys.service import KeyHasher
from imagegate.keys.usage import KeyUsage
from imagegate.outbound import callback_client, image_client
from imagegate.providers.base import Provider
from imagegate.providers.routing import ProviderRouter
from imagegate.providers.setup import build_router, upstream_client
from imagegate.storage.base import ImageStore
from imagegate.storage.retention import image_retention
from imagegate.storage.setup import build_store
from imagegate.storage.thumbnails import THUMBNAILS
from imagegate.tasks import idempotency
from imagegate.tasks.jobs import TaskRunner
from imagegate.tasks.reads import CallerReads
from imagegate.tasks.service import RUN_TASK, GroupedCreate, write_grouped
from imagegate.tasks.watch import TaskWatch
from imagegate.users.throttle import AttemptThrottle, LoginThrottle


@dataclass
class Services:
    settings: Settings
    clock: Clock
    db: Database
    hasher: KeyHasher
    queue: JobQueue
    store: ImageStore
    providers: ProviderRouter
    http: httpx.AsyncClient  # callbacks: checked IPs, no keep-alive
    upstream_http: httpx.AsyncClient  # the providers' APIs
    image_http: httpx.AsyncClient  # the providers' image URLs: checked addresses
    rate_limiter: RateLimiter
    trusted_proxies: list[Network]
    key_usage: KeyUsage
    login_throttle: LoginThrottle
    redeem_throttle: AttemptThrottle  # redemption codes: failed attempts per account, address
    watch: TaskWatch  # waiters of tasks' changes (long-poll, events, cancelled runs)
    catalog: Catalogue  # the models offered, as of the catalogue's latest version
    # PostgreSQL: plain creates that arrive together, charged and added in one statement.
    creates: Grouped[GroupedCreate, bool] | None
    reads: CallerReads  # the request path's first read (grouped on PostgreSQL)
    workers: list[Worker | ProcrastinateWorker] = field(default_factory=list)
    procrastinate: ProcrastinateJobs | None = None  # PostgreSQL: the job engine, once started
    _following: asyncio.Task[None] | None = None  # new task queues get a pool (PostgreSQL)

    @property
    def public_url(self) -> str:
        return self.settings.resolved_public_url

    async def start_workers(
        self, queues: Sequence[str] | None = None, concurrency: int | None = None
    ) -> None:
        await self.stop_workers()  # (tests start them again)
        model_queues = sorted(await self.task_queues(waiting=True))
        self.workers = build_workers(self, queues, concurrency, model_queues)
        for worker in self.workers:
            worker.start()
        if self.procrastinate is not None and queues is None:  # see jobs/task_queues.py
            follower = QueueFollower(
                self.task_queues, set(model_queues), lambda new: self._add_pool(new, concurrency)
            )
            self._following = asyncio.create_task(follower.run(), name="task-queues")

    async def task_queues(self, waiting: bool = False) -> set[str]:
        """The queues tasks go to: the default one and the catalogue models'; ``waiting``: on
        PostgreSQL also every queue that holds a job (jobs/task_queues.py)."""
        names = {DEFAULT_QUEUE, *(model.queue for model in (await self.catalog.fresh()).values())}
        if waiting and not self.db.is_sqlite:
            names |= await self.db.read(waiting_queues)
        return names - {CALLBACKS_QUEUE, MAINTENANCE_QUEUE}

    def _add_pool(self, queues: list[str], concurrency: int | None) -> None:
        assert self.procrastinate is not None
        s = self.settings
        worker = ProcrastinateWorker(
            self.procrastinate, "tasks", queues, concurrency or s.worker_concurrency,
            s.worker_poll_interval, s.shutdown_grace,
        )  # fmt: skip
        worker.start()
        self.workers.append(worker)

    async def stop_workers(self) -> None:
        """Stop claiming jobs; running ones get the grace, then are handed back."""
        if self._following is not None:
            self._following.cancel()
            self._following = None
        # One pool after the other (each with the whole grace): stopping procrastinate's pools
        # at once, on one App, was seen to hang after the database dropped its connections.
        for worker in self.workers:
            await worker.stop()

    async def close(self) -> None:
        await self.stop_workers()
        if self.procrastinate is not None:
            await self.procrastinate.close()
        await self.watch.close()
        await self.key_usage.stop()
        await self.rate_limiter.close()
        await self.http.aclose()
        await self.upstream_http.aclose()
        await self.image_http.aclose()
        await self.db.dispose()


def build_services(
    settings: Settings, clock: Clock | None = None, providers: dict[str, Provider] | None = None
) -> Services:
    """Wire the process's services; the caller starts the worker, if any, and closes them."""
    clock = clock or Clock()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(
        settings.resolved_database_url,
        settings.database_pool_size,
        settings.database_pool_overflow,
    )
    upstream, images = upstream_client(settings), image_client(settings)
    rate_limiter = RateLimiter(settings.resolved_rate_limit_storage)
    hasher = KeyHasher(load_or_create_secret(settings.data_dir, settings.secret_key))
    queue = JobQueue(clock)
    return Services(
        settings=settings,
        clock=clock,
        db=db,
        hasher=hasher,
        queue=queue,
        store=build_store(settings),
        providers=build_router(settings, db, clock, upstream, images, providers),
        http=callback_client(settings),
        upstream_http=upstream,
        image_http=images,
        rate_limiter=rate_limiter,
        trusted_proxies=parse_networks(settings.trusted_proxies),
        key_usage=KeyUsage(db, settings.key_usage_flush_seconds),
        login_throttle=LoginThrottle(
            rate_limiter.storage,
            settings.login_failures_per_email,
            settings.login_failures_per_address,
            namespace="login:" + hasher.derive("login").hex()[:16],
        ),
        watch=TaskWatch(db),
        catalog=Catalogue(db),
        creates=None if db.is_sqlite else grouped_creates(db, queue),
        reads=CallerReads(db),
        redeem_throttle=AttemptThrottle(
            rate_limiter.storage,
            settings.redeem_attempts_per_account,
            settings.redeem_attempts_per_address,
            namespace="redeem:" + hasher.derive("redeem").hex()[:16],
        ),
    )


# Grouped creates (db/grouped.py: one statement at a time per process, the creates that arrive
# while it runs go in the next). Measured (bench/run.py's create row over 100 accounts): one at a
# time, 2,670 creates/s in groups of 12 on average; two at a time, 2,060 in groups of 7: each
# statement's fixed cost spread over fewer creates.
CREATES_PER_STATEMENT = 64


def grouped_creates(db: Database, queue: JobQueue) -> Grouped[GroupedCreate, bool]:
    async def write(creates: Sequence[GroupedCreate]) -> list[bool]:
        return await write_grouped(db, queue, creates)

    return Grouped(write, CREATES_PER_STATEMENT)


def job_kinds(services: Services) -> dict[str, JobKind]:
    """Every job kind this release runs, by name (both engines run the same handlers)."""
    s = services
    runner = TaskRunner(
        s.db, s.queue, s.providers, s.store, s.clock, s.settings.callback_retry_delays, s.watch,
        s.catalog,
    )  # fmt: skip
    return {
        RUN_TASK: runner.job_kind(),
        DELIVER_CALLBACK: CallbackDeliverer(s.db, s.queue, s.http, s.clock, s.settings).job_kind(),
        DELIVER_ACCOUNT_EVENT: AccountEventDeliverer(
            s.db, s.queue, s.http, s.clock, s.settings
        ).job_kind(),
    }


def cleanups(services: Services) -> tuple[Cleanup, ...]:
    """Retention rules that run hourly with the jobs' (jobs/admin.py's retention)."""
    days = services.settings.image_retention_days
    if days is None:
        return (idempotency.delete_expired,)
    thumbnails = services.settings.data_dir / THUMBNAILS
    return (idempotency.delete_expired, image_retention(services.store, thumbnails, days))


def retry_policy(settings: Settings) -> RetryPolicy:
    return RetryPolicy(max_attempts=settings.job_max_attempts, timeout=settings.job_timeout)


def build_workers(
    services: Services,
    queues: Sequence[str] | None = None,
    concurrency: int | None = None,
    model_queues: Sequence[str] = (),
) -> list[Worker | ProcrastinateWorker]:
    """Worker pools for ``queues`` (None: all). Callbacks always get a pool of their own, so slow
    receivers never hold up tasks; task queues (``model_queues``: the catalogue models' queues
    as the worker starts) share the other."""
    settings = services.settings
    task_queues = None if queues is None else tuple(q for q in queues if q != CALLBACKS_QUEUE)
    pools: list[tuple[tuple[str, ...] | None, tuple[str, ...], int]] = []
    if task_queues is None or task_queues:
        pools.append((task_queues, (CALLBACKS_QUEUE,), concurrency or settings.worker_concurrency))
    if queues is None or CALLBACKS_QUEUE in queues:
        pools.append(((CALLBACKS_QUEUE,), (), concurrency or settings.callback_concurrency))
    if not services.db.is_sqlite:
        return _procrastinate_pools(services, pools, model_queues)
    kinds = job_kinds(services)
    return [
        Worker(
            services.db, services.queue, kinds, services.clock,
            _worker_config(settings, cleanups(services), *pool),
        )
        for pool in pools
    ]  # fmt: skip


def _procrastinate_pools(
    services: Services,
    pools: list[tuple[tuple[str, ...] | None, tuple[str, ...], int]],
    model_queues: Sequence[str],
) -> list[Worker | ProcrastinateWorker]:
    """procrastinate names the queues it takes: an unrestricted task pool takes the default
    queue and ``model_queues`` (Services.task_queues; one that appears later gets a pool of its
    own, jobs/task_queues.py). The periodic maintenance runs in the first pool."""
    settings = services.settings
    services.procrastinate = ProcrastinateJobs(
        services.db,
        services.clock,
        job_kinds(services),
        retry_policy(settings),
        settings.job_stall_seconds,
        settings.job_retention_days,
        cleanups(services),
    )
    every_model = tuple(sorted({DEFAULT_QUEUE, *model_queues}))
    workers: list[Worker | ProcrastinateWorker] = []
    for index, (only, _, size) in enumerate(pools):
        names = (*(every_model if only is None else only), *([MAINTENANCE_QUEUE] * (index == 0)))
        name = "callbacks" if only == (CALLBACKS_QUEUE,) else "tasks"
        workers.append(
            ProcrastinateWorker(
                services.procrastinate,
                name,
                names,
                size,
                settings.worker_poll_interval,
                settings.shutdown_grace,
            )
        )
    return workers


def _worker_config(
    settings: Settings,
    rules: tuple[Cleanup, ...],
    queues: tuple[str, ...] | None,
    exclude: tuple[str, ...],
    concurrency: int,
) -> WorkerConfig:
    return WorkerConfig(
        concurrency=concurrency,
        poll_interval=settings.worker_poll_interval,
        stall_seconds=settings.job_stall_seconds,
        policy=retry_policy(settings),
        retention_days=settings.job_retention_days,
        cleanups=rules,
        queues=queues,
        exclude_queues=exclude,
        grace=settings.shutdown_grace,
    )

"""Everything a process shares: built once from Settings, closed on shutdown."""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx

from imagegate.callbacks.jobs import CallbackDeliverer
from imagegate.callbacks.service import CALLBACKS_QUEUE, DELIVER_CALLBACK
from imagegate.catalog import MODELS
from imagegate.clock import Clock
from imagegate.config import Settings
from imagegate.db.database import Database
from imagegate.jobs.queue import JobQueue
from imagegate.jobs.worker import Worker, WorkerConfig
from imagegate.keys.network import Network, parse_networks
from imagegate.keys.ratelimit import RateLimiter
from imagegate.keys.secret import load_or_create_secret
from imagegate.keys.service import KeyHasher
from imagegate.providers.base import Provider
from imagegate.providers.registry import ProviderRegistry
from imagegate.providers.simulator import SimulatorProvider
from imagegate.storage.local import LocalImageStore
from imagegate.tasks.jobs import TaskRunner
from imagegate.tasks.service import RUN_TASK, TASKS_QUEUE


@dataclass
class Services:
    settings: Settings
    clock: Clock
    db: Database
    hasher: KeyHasher
    queue: JobQueue
    store: LocalImageStore
    providers: ProviderRegistry
    http: httpx.AsyncClient
    rate_limiter: RateLimiter
    trusted_proxies: list[Network]
    workers: list[Worker] = field(default_factory=list)

    @property
    def public_url(self) -> str:
        return self.settings.resolved_public_url

    async def close(self) -> None:
        for worker in self.workers:
            await worker.stop()
        await self.http.aclose()
        await self.db.dispose()


def default_providers(settings: Settings) -> dict[str, Provider]:
    simulator = SimulatorProvider(settings.simulator_delay_for)
    return {name: simulator for name in MODELS}


def build_services(
    settings: Settings, clock: Clock | None = None, providers: dict[str, Provider] | None = None
) -> Services:
    """Wire the process's services; the caller starts the worker, if any, and closes them."""
    clock = clock or Clock()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return Services(
        settings=settings,
        clock=clock,
        db=Database(settings.resolved_database_url),
        hasher=KeyHasher(load_or_create_secret(settings.data_dir, settings.secret_key)),
        queue=JobQueue(clock),
        store=LocalImageStore(settings.data_dir / "images"),
        providers=ProviderRegistry(providers or default_providers(settings)),
        http=httpx.AsyncClient(
            follow_redirects=False,
            trust_env=False,  # never route callbacks through an environment proxy
            timeout=settings.callback_timeout,
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=64),
        ),
        rate_limiter=RateLimiter(settings.rate_limit_storage),
        trusted_proxies=parse_networks(settings.trusted_proxies),
    )


def build_workers(services: Services) -> list[Worker]:
    """One worker per pool: tasks, and callbacks apart, so slow receivers never hold up tasks."""
    s = services
    runner = TaskRunner(
        s.db, s.queue, s.providers, s.store, s.clock, s.settings.callback_retry_delays
    )
    deliverer = CallbackDeliverer(s.db, s.queue, s.http, s.clock, s.settings)
    kinds = {RUN_TASK: runner.job_kind(), DELIVER_CALLBACK: deliverer.job_kind()}
    pools = [
        (TASKS_QUEUE, s.settings.worker_concurrency),
        (CALLBACKS_QUEUE, s.settings.callback_concurrency),
    ]
    return [
        Worker(s.db, s.queue, kinds, s.clock, _worker_config(s.settings, queue, concurrency))
        for queue, concurrency in pools
    ]


def _worker_config(settings: Settings, queue: str, concurrency: int) -> WorkerConfig:
    return WorkerConfig(
        concurrency=concurrency,
        poll_interval=settings.worker_poll_interval,
        stall_seconds=settings.job_stall_seconds,
        max_attempts=settings.job_max_attempts,
        timeout=settings.job_timeout,
        queues=(queue,),
    )

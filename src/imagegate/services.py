"""Everything a process shares: built once from Settings, closed on shutdown."""

from __future__ import annotations

from dataclasses import dataclass, field

from imagegate.catalog import MODELS
from imagegate.clock import Clock
from imagegate.config import Settings
from imagegate.db.database import Database
from imagegate.jobs.queue import JobQueue
from imagegate.jobs.worker import Worker, WorkerConfig
from imagegate.keys.secret import load_or_create_secret
from imagegate.keys.service import KeyHasher
from imagegate.providers.base import Provider
from imagegate.providers.registry import ProviderRegistry
from imagegate.providers.simulator import SimulatorProvider
from imagegate.storage.local import LocalImageStore
from imagegate.tasks.jobs import TaskRunner
from imagegate.tasks.service import RUN_TASK


@dataclass
class Services:
    settings: Settings
    clock: Clock
    db: Database
    hasher: KeyHasher
    queue: JobQueue
    store: LocalImageStore
    providers: ProviderRegistry
    worker: Worker | None = field(default=None)

    @property
    def public_url(self) -> str:
        return self.settings.resolved_public_url


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
    )


def build_worker(services: Services) -> Worker:
    settings = services.settings
    runner = TaskRunner(services.db, services.providers, services.store, services.clock)
    config = WorkerConfig(
        concurrency=settings.worker_concurrency,
        poll_interval=settings.worker_poll_interval,
        stall_seconds=settings.job_stall_seconds,
        max_attempts=settings.job_max_attempts,
    )
    kinds = {RUN_TASK: runner.job_kind()}
    return Worker(services.db, services.queue, kinds, services.clock, config)

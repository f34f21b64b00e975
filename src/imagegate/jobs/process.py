"""`imagegate worker`: worker pools in a process of their own, stopped cleanly by SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Sequence

from imagegate import heap
from imagegate.config import Settings
from imagegate.log_config import configure_logging
from imagegate.metrics.exposition import metrics_port
from imagegate.metrics.families import process_exited
from imagegate.services import build_services

log = logging.getLogger(__name__)


async def run_workers(
    settings: Settings, queues: Sequence[str] | None, concurrency: int | None
) -> None:
    """Run until a signal: unfinished jobs are handed back for another worker to run."""
    configure_logging(settings)
    services = build_services(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await services.start_workers(queues, concurrency)
    heap.settle()
    log.info("imagegate worker running: %s", ", ".join(w.describe() for w in services.workers))
    try:
        async with metrics_port(services):
            await stop.wait()
        log.info("stopping: running jobs get %.0f s to finish", settings.shutdown_grace)
    finally:
        await services.close()
        process_exited()

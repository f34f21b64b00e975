"""What is, read from the database when scraped: the same answer from every process."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.metrics_core import GaugeMetricFamily, Metric

from imagegate.jobs.stats import queue_depths
from imagegate.metrics import families as m
from imagegate.services import Services


async def state_metrics(services: Services) -> list[Metric]:
    """Queue depth and the age of the oldest waiting job per queue; each provider's circuit."""
    now = services.clock.now()
    async with services.db.sessions() as session:
        depths = await queue_depths(session, now)
    depth = GaugeMetricFamily(m.QUEUE_DEPTH, "Jobs waiting (due or scheduled)", labels=["queue"])
    oldest = GaugeMetricFamily(
        m.QUEUE_OLDEST, "Age of the oldest waiting job (0: none waits)", labels=["queue"]
    )
    for queue in depths:
        depth.add_metric([queue.queue], queue.waiting)
        age = 0.0 if queue.oldest_waiting_at is None else max(0.0, now - queue.oldest_waiting_at)
        oldest.add_metric([queue.queue], age)
    circuits = GaugeMetricFamily(
        m.CIRCUIT_OPEN, "1 while a provider's circuit is open (not called)", labels=["provider"]
    )
    for status in await services.providers.statuses((await services.catalog.fresh()).values()):
        circuits.add_metric([status.name], 1.0 if status.circuit == "open" else 0.0)
    return [depth, oldest, circuits]


class Snapshot:
    """Families computed before the scrape, as a collector (collect() must not do I/O)."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self.families = list(families)

    def collect(self) -> Iterable[Metric]:
        return self.families

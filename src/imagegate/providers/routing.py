"""Which providers serve a model, in order, and how a generation moves between them.

For each provider on the model's route: skip it while its circuit is open; wait for one of its
in-flight slots (a queue, not an error: Ideogram allows about 10 images in flight); call it;
retry a retryable failure with exponential backoff (or the upstream's Retry-After) up to
``retries`` times; then fail over to the next provider. A content rejection ends the task at
once. Waits use the code's clock, so tests drive them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from imagegate.catalog import CatalogModel
from imagegate.clock import Clock
from imagegate.metrics import record
from imagegate.metrics.families import PROVIDER_IN_FLIGHT
from imagegate.providers.backoff import MAX_BACKOFF, delay
from imagegate.providers.base import (
    GeneratedImage,
    GenerationRequest,
    Provider,
    ProviderError,
    unavailable,
)
from imagegate.providers.circuit import CircuitBreakers, CircuitState

log = logging.getLogger(__name__)


@dataclass
class Route:
    """One provider as a model's route uses it; ``problem`` says why it cannot (no key)."""

    name: str
    provider: Provider | None
    problem: str = ""
    cap: int | None = None  # calls at once in this process (None: no cap); more wait in line
    slots: asyncio.Semaphore | None = field(default=None, init=False, compare=False)
    # Calls to the provider in progress in this process (the operator's System page shows it).
    in_flight: int = field(default=0, compare=False)

    def __post_init__(self) -> None:
        if self.cap is not None:
            self.slots = asyncio.Semaphore(self.cap)


@dataclass(frozen=True)
class ProviderStatus:
    """A provider as the operator sees it: usable or why not, its circuit, its calls now."""

    name: str
    problem: str
    circuit: str  # closed | open | probing
    failures: int
    opened_until: float | None
    in_flight: int
    cap: int | None


@dataclass(frozen=True)
class Generated:
    provider: str  # the route's name: simulator, ideogram, replicate
    images: list[GeneratedImage]


@dataclass(frozen=True)
class RetryPolicy:
    retries: int = 2
    backoff: float = 1.0
    max_retry_after: float = 60.0
    max_backoff: float = MAX_BACKOFF

    def wait(self, error: ProviderError, attempt: int) -> float | None:
        """Seconds before retry number ``attempt + 1`` (the rule of providers/backoff.py); None:
        do not retry this provider (not retryable, out of retries, Retry-After too long)."""
        if not error.retryable or attempt >= self.retries:
            return None
        if error.retry_after is not None and error.retry_after > self.max_retry_after:
            return None
        return delay(attempt, self.backoff, error.retry_after, self.max_backoff)


@dataclass
class ProviderRouter:
    """A model's route (``route``), and generations along it.

    ``built``: every provider this process can call, by name, each built once (its in-flight
    slots are shared by every model routed to it). A model's route is, in this order: the
    providers its catalogue row names; else ``configured`` (IMAGEGATE_ROUTES) for its name;
    else ``default`` (the providers with credentials, or the simulator). ``fixed`` (tests)
    gives a model's route outright."""

    built: dict[str, Route]
    breakers: CircuitBreakers
    clock: Clock
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    default: tuple[str, ...] = ("simulator",)
    configured: dict[str, list[str]] = field(default_factory=dict)
    fixed: dict[str, list[Route]] = field(default_factory=dict)

    def route(self, model: CatalogModel) -> list[Route]:
        if model.name in self.fixed:
            return self.fixed[model.name]
        names = model.providers
        if names is None:
            names = tuple(self.configured.get(model.name, self.default))
        return [self.built.get(n) or Route(n, None, f"unknown provider {n!r}") for n in names]

    async def available(self, model: CatalogModel) -> bool:
        """Could a task for ``model`` be worked on now (some provider configured, its
        circuit not open)? False means: refuse the task with 503 rather than take money."""
        for route in self.route(model):
            if route.provider is not None and not await self.breakers.is_open(route.name):
                return True
        return False

    async def statuses(self, models: Iterable[CatalogModel]) -> list[ProviderStatus]:
        """Every provider on the route of one of ``models``, with its circuit (read fresh from
        the database, so what other processes recorded shows too) and this process's calls in
        flight."""
        circuits = await self.breakers.snapshot()
        routes: dict[str, list[Route]] = {}
        for route in (r for model in models for r in self.route(model)):
            same = routes.setdefault(route.name, [])
            if all(route is not seen for seen in same):
                same.append(route)
        names = list(routes) + sorted(set(circuits) - set(routes))
        return [self._status(name, routes.get(name, []), circuits.get(name)) for name in names]

    def _status(
        self, name: str, routes: list[Route], circuit: CircuitState | None
    ) -> ProviderStatus:
        circuit = circuit or CircuitState()
        caps = [r.cap for r in routes if r.cap is not None]
        return ProviderStatus(
            name=name,
            problem=next((r.problem for r in routes if r.problem), "" if routes else "on no route"),
            circuit=self.breakers.describe(circuit),
            failures=circuit.failures,
            opened_until=circuit.opened_until,
            in_flight=sum(r.in_flight for r in routes),
            cap=sum(caps) if caps else None,
        )

    async def generate(self, model: CatalogModel, request: GenerationRequest) -> Generated:
        """Images from the first provider that makes them; the last failure otherwise (its
        ``provider`` names the provider that failed last, if any was called)."""
        last = unavailable(f"no usable provider for {model.name}")
        for route in self.route(model):
            if route.provider is None:
                last = unavailable(f"{route.name}: {route.problem}")
                continue
            if not await self.breakers.allow(route.name):
                last = unavailable(f"{route.name}: circuit open")
                continue
            try:
                asked = replace(request, upstream=model.upstream.get(route.name, {}))
                return Generated(route.name, await self._attempts(route, route.provider, asked))
            except ProviderError as exc:
                exc.provider = route.name
                last = exc
                if not exc.failover:
                    raise
                log.warning("task %s: failing over from %s", request.task_id, route.name)
        raise last

    async def _attempts(
        self, route: Route, provider: Provider, request: GenerationRequest
    ) -> list[GeneratedImage]:
        attempt = 0
        while True:
            try:
                images = await self._call(route, provider, request)
            except ProviderError as exc:
                log.warning("task %s: %s failed: %s", request.task_id, route.name, exc.detail)
                if exc.unhealthy:
                    await self.breakers.record_failure(route.name)
                else:
                    await self.breakers.record_success(route.name)  # it answered sensibly
                wait = self.policy.wait(exc, attempt)
                if wait is None or await self.breakers.is_open(route.name):
                    raise
                record.provider_retry(route.name)
                await self.clock.sleep(wait)
                attempt += 1
            else:
                await self.breakers.record_success(route.name)
                return images

    async def _call(
        self, route: Route, provider: Provider, request: GenerationRequest
    ) -> list[GeneratedImage]:
        if route.slots is None:
            return await self._counted(route, provider, request)
        async with route.slots:
            return await self._counted(route, provider, request)

    @staticmethod
    async def _counted(
        route: Route, provider: Provider, request: GenerationRequest
    ) -> list[GeneratedImage]:
        route.in_flight += 1
        outcome = "error"  # a failure of ours, not the provider's answer
        try:
            with PROVIDER_IN_FLIGHT.labels(route.name).track_inprogress():
                images = await provider.generate(request)
            outcome = "ok"
            return images
        except ProviderError as exc:
            outcome = exc.code
            raise
        except asyncio.CancelledError:
            outcome = "cancelled"  # the task's run was stopped (the task was cancelled)
            raise
        finally:
            route.in_flight -= 1
            record.provider_call(route.name, outcome)

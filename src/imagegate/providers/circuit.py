"""Circuit breakers per provider, kept in the database so every process sees the same ones.

Closed: work goes to the provider. ``threshold`` failures in a row (timeouts, 5xx, bad
credentials; not content rejections) open it for ``cooldown`` seconds: no work is sent, and
API processes refuse new tasks for a model none of whose providers is open to work. When the
cooldown is over, exactly one attempt (whichever process claims it first) probes the
provider: success closes the circuit, failure opens it for another cooldown.

Reads come from a copy refreshed at most every ``cache_seconds``, so checking on each request
costs no query; this process's own writes update the copy at once.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from sqlalchemy import case, select, update
from sqlalchemy.exc import IntegrityError

from imagegate.clock import Clock
from imagegate.db.database import Database
from imagegate.db.models import ProviderCircuit

_CIRCUITS = "SELECT provider, failures, opened_until FROM provider_circuits"


@dataclass(frozen=True)
class CircuitState:
    failures: int = 0
    opened_until: float | None = None


class CircuitBreakers:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        threshold: int,
        cooldown: float,
        cache_seconds: float = 1.0,
    ) -> None:
        self.db, self.clock = db, clock
        self.threshold, self.cooldown, self.cache_seconds = threshold, cooldown, cache_seconds
        self._states: dict[str, CircuitState] = {}
        self._loaded_at: float | None = None
        self._loading = asyncio.Lock()

    async def state(self, provider: str) -> CircuitState:
        now = self.clock.now()
        if self._loaded_at is None or now - self._loaded_at >= self.cache_seconds:
            await self._load(now)
        return self._states.get(provider, CircuitState())

    async def is_open(self, provider: str) -> bool:
        """Open and cooling down: no work for it, not even a probe."""
        opened_until = (await self.state(provider)).opened_until
        return opened_until is not None and opened_until > self.clock.now()

    async def allow(self, provider: str) -> bool:
        """May work go to ``provider`` now? After a cooldown, True for the one probe only."""
        opened_until = (await self.state(provider)).opened_until
        now = self.clock.now()
        if opened_until is None:
            return True
        if opened_until > now:
            return False
        async with self.db.transaction() as session:  # claim the probe: one winner
            claimed = await session.execute(
                update(ProviderCircuit)
                .where(
                    ProviderCircuit.provider == provider,
                    ProviderCircuit.opened_until <= now,
                )
                .values(opened_until=now + self.cooldown, updated_at=now)
            )
        await self._load(now)
        return bool(claimed.rowcount)  # type: ignore[attr-defined]

    async def record_success(self, provider: str) -> None:
        if (await self.state(provider)) == CircuitState():
            return  # already closed and clean: nothing to write
        now = self.clock.now()
        async with self.db.transaction() as session:
            await session.execute(
                update(ProviderCircuit)
                .where(ProviderCircuit.provider == provider)
                .values(failures=0, opened_until=None, updated_at=now)
            )
        await self._load(now)

    async def record_failure(self, provider: str) -> None:
        now = self.clock.now()
        opens = ProviderCircuit.failures + 1 >= self.threshold
        async with self.db.transaction() as session:
            result = await session.execute(
                update(ProviderCircuit)
                .where(ProviderCircuit.provider == provider)
                .values(
                    failures=ProviderCircuit.failures + 1,
                    opened_until=case(
                        (opens, now + self.cooldown), else_=ProviderCircuit.opened_until
                    ),
                    updated_at=now,
                )
            )
        if not result.rowcount:  # type: ignore[attr-defined]
            await self._insert(provider, now)
        await self._load(now)

    async def _insert(self, provider: str, now: float) -> None:
        opened = now + self.cooldown if self.threshold <= 1 else None
        try:
            async with self.db.transaction() as session:
                session.add(
                    ProviderCircuit(
                        provider=provider, failures=1, opened_until=opened, updated_at=now
                    )
                )
        except IntegrityError:  # another process inserted it first: count on its row
            await self.record_failure(provider)

    async def snapshot(self) -> dict[str, CircuitState]:
        """Every recorded circuit, read from the database now (the cached copy is left as is)."""
        async with self.db.sessions() as session:
            rows = (await session.scalars(select(ProviderCircuit))).all()
        return {row.provider: CircuitState(row.failures, row.opened_until) for row in rows}

    def describe(self, state: CircuitState) -> str:
        """closed (work goes to it), open (cooling down, or a probe is running) or probing (the
        cooldown is over: the next attempt probes it)."""
        if state.opened_until is None:
            return "closed"
        return "open" if state.opened_until > self.clock.now() else "probing"

    async def _load(self, now: float) -> None:
        # One read at a time: requests that find the copy stale meanwhile wait for that read
        # rather than each reading the table again.
        async with self._loading:
            if self._loaded_at is not None and self._loaded_at >= now:
                return
            started = self.clock.now()  # the copy is as fresh as the moment its read began
            rows = await self.db.read(lambda tx: tx.all(_CIRCUITS))
            self._states = {name: CircuitState(failures, until) for name, failures, until in rows}
            self._loaded_at = started

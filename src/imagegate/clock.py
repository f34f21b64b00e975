"""The one source of "now" (Unix seconds). Tests move time forward through ManualClock."""

from __future__ import annotations

import asyncio
import time

_MANUAL_TICK = 0.01


class Clock:
    def now(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of this clock's time (backoffs, Retry-After, polling intervals)."""
        await asyncio.sleep(max(seconds, 0.0))


class ManualClock(Clock):
    """Real time plus an offset that tests advance, so deadlines and schedules can be crossed."""

    def __init__(self) -> None:
        self.offset = 0.0
        self.sleeping_until: list[float] = []  # deadlines of the sleep() calls under way

    def now(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds

    async def sleep(self, seconds: float) -> None:
        """Ends when real time or an advance() has moved now() past the deadline."""
        deadline = self.now() + seconds
        self.sleeping_until.append(deadline)
        try:
            # Polling, not an Event: advance() is called from sync test code, outside any loop.
            while (remaining := deadline - self.now()) > 0:  # noqa: ASYNC110
                await asyncio.sleep(min(remaining, _MANUAL_TICK))
        finally:
            self.sleeping_until.remove(deadline)

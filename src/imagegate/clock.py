"""The one source of "now" (Unix seconds). Tests move time forward through ManualClock."""

from __future__ import annotations

import time


class Clock:
    def now(self) -> float:
        return time.time()


class ManualClock(Clock):
    """Real time plus an offset that tests advance, so deadlines and schedules can be crossed."""

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds

"""Sign-in throttling: failed attempts counted per email and per client address in a moving
15-minute window, in the rate limiter's store (memory, or Redis shared by every API process)."""

from __future__ import annotations

import math
import time

from limits import RateLimitItemPerMinute
from limits.aio.storage import Storage
from limits.aio.strategies import MovingWindowRateLimiter

WINDOW_MINUTES = 15


class LoginThrottle:
    def __init__(
        self, storage: Storage, per_email: int, per_address: int, namespace: str = "login"
    ) -> None:
        # ``namespace`` keeps installations that share one Redis apart.
        self._namespace = namespace
        self._limiter = MovingWindowRateLimiter(storage)
        self._email = RateLimitItemPerMinute(per_email, WINDOW_MINUTES)
        self._address = RateLimitItemPerMinute(per_address, WINDOW_MINUTES)

    async def wait_seconds(self, email: str, address: str) -> int:
        """0 when a sign-in may be tried now, else the seconds until one may (real time: the
        ``limits`` library keeps its own clock)."""
        waits = []
        for item, who in ((self._email, email), (self._address, address)):
            if not await self._limiter.test(item, self._namespace, who):
                stats = await self._limiter.get_window_stats(item, self._namespace, who)
                waits.append(max(1, math.ceil(stats.reset_time - time.time())))
        return max(waits, default=0)

    async def failed(self, email: str, address: str) -> None:
        await self._limiter.hit(self._email, self._namespace, email)
        await self._limiter.hit(self._address, self._namespace, address)

    async def succeeded(self, email: str) -> None:
        """A correct password clears the email's count (not the address's)."""
        await self._limiter.clear(self._email, self._namespace, email)

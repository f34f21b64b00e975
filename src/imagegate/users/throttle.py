"""Throttling of guesses in a moving 15-minute window, in the rate limiter's store (memory, or
Redis shared by every API process): attempts per subject (an email signing in, an account
redeeming codes; a success clears its count) and failed attempts per client address."""

from __future__ import annotations

import math
import time

from limits import RateLimitItemPerMinute
from limits.aio.storage import Storage
from limits.aio.strategies import MovingWindowRateLimiter

WINDOW_MINUTES = 15


class AttemptThrottle:
    def __init__(
        self, storage: Storage, per_subject: int, per_address: int, namespace: str
    ) -> None:
        # ``namespace`` keeps throttles, and installations that share one Redis, apart.
        self._namespace = namespace
        self._limiter = MovingWindowRateLimiter(storage)
        self._subject = RateLimitItemPerMinute(per_subject, WINDOW_MINUTES)
        self._address = RateLimitItemPerMinute(per_address, WINDOW_MINUTES)

    async def attempt(self, subject: str, address: str) -> int:
        """0 when an attempt may go ahead, else the seconds until one may (real time: the
        ``limits`` library keeps its own clock). The subject's attempt is counted here, before
        the work, in one check-and-count step, so guesses sent in parallel count too; the
        address counts only failures (many people may share one address), see failed()."""
        if not await self._limiter.test(self._address, self._namespace, address):
            return await self._wait(self._address, address)
        if not await self._limiter.hit(self._subject, self._namespace, subject):
            return await self._wait(self._subject, subject)
        return 0

    async def failed(self, address: str) -> None:
        """The attempt failed: it counts against the address too."""
        await self._limiter.hit(self._address, self._namespace, address)

    async def _wait(self, item: RateLimitItemPerMinute, who: str) -> int:
        stats = await self._limiter.get_window_stats(item, self._namespace, who)
        return max(1, math.ceil(stats.reset_time - time.time()))

    async def succeeded(self, subject: str) -> None:
        """Clear the subject's count (not the address's)."""
        await self._limiter.clear(self._subject, self._namespace, subject)


class LoginThrottle(AttemptThrottle):
    """Sign-ins per email and per address; a correct password clears the email's count."""

    def __init__(
        self, storage: Storage, per_email: int, per_address: int, namespace: str = "login"
    ) -> None:
        super().__init__(storage, per_email, per_address, namespace)


def wait_words(seconds: int) -> str:
    """'N minutes' (at least one) for a person told to wait ``seconds``."""
    minutes = max(1, math.ceil(seconds / 60))
    return f"{minutes} minute{'s' * (minutes != 1)}"

"""Requests per minute per key with the `limits` library: memory in embedded mode, Redis when
several processes share the limit."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import cast

from limits import RateLimitItemPerMinute
from limits.aio.storage import Storage as AsyncStorage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

from imagegate.errors import RateLimitExceeded


@dataclass(frozen=True)
class RateState:
    limit: int
    remaining: int
    reset: int  # Unix seconds when the oldest request in the window expires

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset),
        }


class RateLimiter:
    def __init__(self, storage_uri: str) -> None:
        # An async+... URI gives an asyncio storage; the factory's type covers both kinds.
        self.storage = cast(AsyncStorage, storage_from_string(storage_uri))
        self._limiter = MovingWindowRateLimiter(self.storage)

    async def healthy(self) -> bool:
        """Whether the counters' store answers (always, in memory)."""
        try:
            return bool(await self.storage.check())
        except Exception:  # an unreachable Redis raises its client's own errors
            return False

    async def hit(self, key_id: str, per_minute: int, now: float) -> RateState:
        """Count one request of ``key_id``; RateLimitExceeded (with Retry-After) when over."""
        item = RateLimitItemPerMinute(per_minute)
        accepted = await self._limiter.hit(item, "key", key_id)
        stats = await self._limiter.get_window_stats(item, "key", key_id)
        state = RateState(per_minute, stats.remaining, math.ceil(stats.reset_time))
        if not accepted:
            retry_after = max(1, math.ceil(stats.reset_time - now))
            raise RateLimitExceeded(
                f"Too many requests: this key allows {per_minute} per minute. "
                f"Retry in {retry_after} s.",
                headers={**state.headers(), "Retry-After": str(retry_after)},
            )
        return state

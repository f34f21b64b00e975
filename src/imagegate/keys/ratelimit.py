"""Requests per minute per key: a fixed window that opens at a key's first request, counted in
O(1) — a dict entry in embedded mode (no I/O, no thread), one Redis script call when several
processes share the limit. The `limits` storage behind it also serves the sign-in throttles."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol, cast

from limits.aio.storage import Storage as AsyncStorage
from limits.storage import storage_from_string

from imagegate.errors import RateLimitExceeded
from imagegate.keys.resp import RedisScript

WINDOW = 60.0  # seconds
_PRUNE_EVERY = 10_000  # hits between sweeps of expired windows (memory)

# KEYS[1]: the key's window; ARGV: now, window seconds. Returns {count, window start}.
_HIT = """
local start = redis.call('HGET', KEYS[1], 's')
if (not start) or tonumber(ARGV[1]) >= tonumber(start) + tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[1], 's', ARGV[1], 'c', 1)
  redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[2])) * 2)
  return {1, ARGV[1]}
end
return {redis.call('HINCRBY', KEYS[1], 'c', 1), start}
"""


_NAMES = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")
_RAW_NAMES = tuple(name.lower().encode() for name in _NAMES)  # as ASGI carries them


@dataclass(frozen=True)
class RateState:
    limit: int
    remaining: int
    reset: int  # Unix seconds when the window ends

    def headers(self) -> dict[str, str]:
        return {name: str(value) for name, value in zip(_NAMES, self._values(), strict=True)}

    def raw_headers(self) -> list[tuple[bytes, bytes]]:
        """headers() as an ASGI response carries them (http_edge.py adds them to one)."""
        limit, remaining, reset = _RAW_NAMES
        return [(limit, b"%d" % self.limit), (remaining, b"%d" % self.remaining),
                (reset, b"%d" % self.reset)]  # fmt: skip

    def _values(self) -> tuple[int, int, int]:
        return self.limit, self.remaining, self.reset


class Windows(Protocol):
    async def hit(self, key: str, now: float) -> tuple[int, float]:
        """Count one request of ``key``; its count and its window's start."""
        ...

    async def close(self) -> None: ...


class MemoryWindows:
    def __init__(self) -> None:
        self._windows: dict[str, list[float]] = {}  # key -> [start, count]
        self._hits = 0

    async def hit(self, key: str, now: float) -> tuple[int, float]:
        window = self._windows.get(key)
        if window is None or now >= window[0] + WINDOW:
            window = self._windows[key] = [now, 0]
        window[1] += 1
        self._hits += 1
        if self._hits % _PRUNE_EVERY == 0:
            self._windows = {k: w for k, w in self._windows.items() if now < w[0] + WINDOW}
        return int(window[1]), window[0]

    async def close(self) -> None:
        pass


class Script(Protocol):
    async def run(self, keys: list[str], args: list[str]) -> Any: ...

    async def close(self) -> None: ...


class CoredisScript:
    """The script through `limits`' own client: Redis over TLS, a socket, Sentinel, a cluster."""

    def __init__(self, storage: Any) -> None:
        self._script = storage.bridge.get_connection().register_script(_HIT)

    async def run(self, keys: list[str], args: list[str]) -> Any:
        return await self._script.execute(keys=keys, args=args)

    async def close(self) -> None:
        pass  # the connection belongs to `limits`' storage


class RedisWindows:
    def __init__(self, script: Script) -> None:
        self._script = script

    async def hit(self, key: str, now: float) -> tuple[int, float]:
        count, start = await self._script.run([f"imagegate:rate:{key}"], [repr(now), repr(WINDOW)])
        return int(count), float(start)

    async def close(self) -> None:
        await self._script.close()


def windows(storage_uri: str, storage: Any) -> Windows:
    """Counters in this process, or in the Redis that `limits` was given."""
    if storage_uri.startswith("async+redis://"):
        return RedisWindows(RedisScript(storage_uri, _HIT))  # plain TCP: the lean client
    if hasattr(storage, "bridge"):
        return RedisWindows(CoredisScript(storage))
    return MemoryWindows()


class RateLimiter:
    def __init__(self, storage_uri: str) -> None:
        # An async+... URI gives an asyncio storage; the factory's type covers both kinds.
        self.storage = cast(AsyncStorage, storage_from_string(storage_uri))
        self._windows = windows(storage_uri, self.storage)

    async def close(self) -> None:
        await self._windows.close()

    async def healthy(self) -> bool:
        """Whether the counters' store answers (always, in memory)."""
        try:
            return bool(await self.storage.check())
        except Exception:  # an unreachable Redis raises its client's own errors
            return False

    async def hit(self, key_id: str, per_minute: int, now: float) -> RateState:
        """Count one request of ``key_id``; RateLimitExceeded (with Retry-After) when over."""
        count, start = await self._windows.hit(key_id, now)
        state = RateState(per_minute, max(per_minute - count, 0), math.ceil(start + WINDOW))
        if count > per_minute:
            retry_after = max(1, math.ceil(start + WINDOW - now))
            raise RateLimitExceeded(
                f"Too many requests: this key allows {per_minute} per minute. "
                f"Retry in {retry_after} s.",
                headers={**state.headers(), "Retry-After": str(retry_after)},
            )
        return state

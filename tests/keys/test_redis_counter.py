"""Rate-limit counters in Redis through the request path's own client (keys/resp.py)."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from harness import BACKEND, REDIS_URL
from imagegate.errors import RateLimitExceeded
from imagegate.keys.ratelimit import RateLimiter
from imagegate.keys.resp import command, read_reply

pytestmark = pytest.mark.skipif(BACKEND != "postgres", reason="the scale-out pass runs Redis")


async def kill_clients() -> None:
    """CLIENT KILL every other connection, as a Redis restart or an idle timeout would."""
    host, port = REDIS_URL.split("//")[1].split("/")[0].split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"))
    assert isinstance(await read_reply(reader), int)
    writer.close()


async def test_concurrent_requests_share_one_count_and_survive_a_dropped_connection() -> None:
    limiter = RateLimiter(f"async+{REDIS_URL}")
    key, now = str(uuid.uuid4()), time.time()
    states = await asyncio.gather(*[limiter.hit(key, 50, now) for _ in range(40)])
    assert sorted(state.remaining for state in states) == list(range(10, 50))
    await kill_clients()
    assert (await limiter.hit(key, 50, now)).remaining == 9  # reconnected, same window
    for _ in range(9):
        await limiter.hit(key, 50, now)
    with pytest.raises(RateLimitExceeded) as refused:
        await limiter.hit(key, 50, now + 1)
    assert refused.value.headers is not None
    assert refused.value.headers["Retry-After"] == "59"
    assert (await limiter.hit(key, 50, now + 60)).remaining == 49  # a new window
    await limiter.close()

"""How long to wait before asking an upstream again: the one rule every adapter and the router use.

An answer's Retry-After (delta-seconds or an HTTP date) is honoured when it names a wait;
otherwise the wait grows exponentially from ``base`` with jitter (no synchronized retry storms)
and never exceeds ``cap``. Nothing here sleeps: callers wait through their Clock, so tests drive
the waits (and the HTTP-date form reads ``now`` from that same clock).
"""

from __future__ import annotations

import email.utils
import math
import random
from collections.abc import Callable
from datetime import UTC

import httpx

MAX_BACKOFF = 30.0  # seconds: the longest wait backoff() computes by itself
JITTER = (0.8, 1.2)  # each wait is the exponential step times a factor drawn from this range
_MAX_DOUBLINGS = 32  # 2**32 times any base is past any cap; keeps the float finite


def retry_after(response: httpx.Response, now: float) -> float | None:
    """The wait Retry-After asks for, in seconds from ``now`` (never negative); None when the
    header is absent or unreadable."""
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(seconds, 0.0) if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000" parses naive; HTTP dates are GMT
        when = when.replace(tzinfo=UTC)
    return max(when.timestamp() - now, 0.0)


def backoff(
    attempt: int,
    base: float,
    cap: float = MAX_BACKOFF,
    uniform: Callable[[float, float], float] = random.uniform,
) -> float:
    """Seconds before retry number ``attempt + 1`` (``attempt`` counts from 0): ``base`` doubled
    per attempt, jittered, at most ``cap``."""
    step = min(base * 2.0 ** min(max(attempt, 0), _MAX_DOUBLINGS), cap)
    return min(step * uniform(*JITTER), cap)


def delay(
    attempt: int,
    base: float,
    retry_after: float | None,
    cap: float = MAX_BACKOFF,
    uniform: Callable[[float, float], float] = random.uniform,
) -> float:
    """The wait before retry number ``attempt + 1``: the upstream's Retry-After when it gave
    one (as is: deciding it is too long is the caller's business), else backoff()."""
    if retry_after is not None:
        return retry_after
    return backoff(attempt, base, cap, uniform)

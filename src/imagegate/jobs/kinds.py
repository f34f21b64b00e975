"""What a job kind is, and the one rule for running an attempt, shared by both engines.

A kind is a handler (idempotent: jobs run at least once) and an optional ``give_up`` that runs
after the last attempt (a task fails with internal_error and is refunded; a callback is marked
failed). ``attempt`` turns one run into an ``Outcome``; each engine records it its own way (the
table queue in SQL, procrastinate by returning, retrying or failing the job).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from imagegate.logs import job_context

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], Awaitable[None]]
GiveUp = Callable[[dict[str, Any], str], Awaitable[None]]


@dataclass(frozen=True)
class JobKind:
    handler: Handler
    give_up: GiveUp | None = None


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    timeout: float = 600.0  # an attempt running longer than this has failed
    backoff_cap: float = 60.0

    def backoff(self, attempt: int) -> float:
        """Seconds before the attempt after ``attempt`` (1-based): 2, 4, 8, ... up to the cap."""
        return float(min(2.0**attempt, self.backoff_cap))


@dataclass(frozen=True)
class Done:
    pass


@dataclass(frozen=True)
class Retry:
    delay: float
    error: str


@dataclass(frozen=True)
class GaveUp:
    error: str


Outcome = Done | Retry | GaveUp


async def attempt(
    kinds: dict[str, JobKind],
    kind: str,
    args: dict[str, Any],
    number: int,
    policy: RetryPolicy,
    job_id: int | None = None,
) -> Outcome:
    """Run attempt ``number`` (1-based) of a job. Past the last attempt (a job that kept killing
    its worker) the handler is not run again; after a failed last attempt ``give_up`` runs."""
    with job_context(args):  # every line of the attempt names its task and request
        return await _attempt(kinds[kind], kind, args, number, policy, job_id)


async def _attempt(
    job_kind: JobKind,
    kind: str,
    args: dict[str, Any],
    number: int,
    policy: RetryPolicy,
    job_id: int | None,
) -> Outcome:
    try:
        if number > policy.max_attempts:
            raise RuntimeError("too many attempts (the job kept crashing its worker)")
        async with asyncio.timeout(policy.timeout):
            await job_kind.handler(args)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        log.exception("job %s (%s) attempt %s failed", job_id, kind, number)
        error = repr(exc)[:2000]
        if number < policy.max_attempts:
            return Retry(policy.backoff(number), error)
        if job_kind.give_up is not None:
            await job_kind.give_up(args, error)
        return GaveUp(error)
    return Done()

"""What the code reports as it happens; each call is made after the transaction it reports on
committed, so the counts match the database (a rolled-back create is never counted)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from imagegate.metrics import families as m
from imagegate.tasks.status import EndedTask, TaskStatus

NO_PROVIDER = "none"  # a task that ended before any provider answered (cancelled, gave up)


def task_created(model: str, speed: str, price: int) -> None:
    _created(model, speed).inc()
    m.CREDITS_CHARGED.inc(price)


@lru_cache(maxsize=1024)  # (.labels() takes a lock and builds a key: once per model and speed)
def _created(model: str, speed: str) -> Any:
    return m.TASKS_CREATED.labels(model, speed)


def task_ended(task: EndedTask, provider: str = "") -> None:
    """``task`` just became completed or failed (refunded) by this process."""
    speed = str(task.input.get("rendering_speed", ""))
    provider = provider or NO_PROVIDER
    if task.status == TaskStatus.COMPLETED:
        m.TASKS_COMPLETED.labels(task.model, speed, provider).inc()
    else:
        m.TASKS_FAILED.labels(task.model, speed, provider, task.error_code or "").inc()
        m.CREDITS_REFUNDED.inc(task.price)
    if task.completed_at is not None:
        m.TASK_SECONDS.labels(task.model, speed).observe(
            max(0.0, task.completed_at - task.created_at)
        )


def provider_call(provider: str, outcome: str) -> None:
    """One call to ``provider`` ended: ``ok``, or the error code it failed with."""
    m.PROVIDER_CALLS.labels(provider, outcome).inc()


def provider_retry(provider: str) -> None:
    m.PROVIDER_RETRIES.labels(provider).inc()


def callback_attempt(outcome: str) -> None:
    """delivered | retry | failed (the callback's state after the attempt)."""
    m.CALLBACK_ATTEMPTS.labels(outcome).inc()

"""A task's states: pending -> processing -> completed | failed (tasks/service.py moves them)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Protocol


class TaskStatus(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"


IN_FLIGHT = (TaskStatus.PENDING, TaskStatus.PROCESSING)
FINAL = (TaskStatus.COMPLETED, TaskStatus.FAILED)


class EndedTask(Protocol):
    """What the bookkeeping of a task's end reads (its callback, its metrics): a task row as the
    ORM or a store returns it."""

    @property
    def id(self) -> str: ...
    @property
    def model(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def input(self) -> dict[str, Any]: ...
    @property
    def callback_url(self) -> str | None: ...
    @property
    def price(self) -> int: ...
    @property
    def created_at(self) -> float: ...
    @property
    def completed_at(self) -> float | None: ...
    @property
    def error_code(self) -> str | None: ...

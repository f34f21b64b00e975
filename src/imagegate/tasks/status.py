"""A task's states: pending -> processing -> completed | failed (tasks/service.py moves them)."""

from __future__ import annotations

from enum import StrEnum


class TaskStatus(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"


IN_FLIGHT = (TaskStatus.PENDING, TaskStatus.PROCESSING)
FINAL = (TaskStatus.COMPLETED, TaskStatus.FAILED)

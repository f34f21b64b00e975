"""A table-queue job's states: todo -> doing -> done | failed, or back to todo for a retry;
todo -> cancelled by an operator."""

from __future__ import annotations

from enum import StrEnum


class JobStatus(StrEnum):
    TODO = "todo"
    DOING = "doing"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

"""A job's states: todo -> doing -> done | failed, or back to todo for a retry."""

from __future__ import annotations

from enum import StrEnum


class JobStatus(StrEnum):
    TODO = "todo"
    DOING = "doing"
    DONE = "done"
    FAILED = "failed"

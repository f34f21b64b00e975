"""Following a task as it runs: ``Prefer: wait=N`` on create, ``?wait=N`` on GET, and the live
status stream (server-sent events). Waiters are woken by tasks/watch.py, never by polling."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

from starlette.datastructures import Headers

from imagegate.errors import InvalidRequest
from imagegate.services import Services
from imagegate.tasks import store
from imagegate.tasks.presenter import task_json
from imagegate.tasks.status import FINAL
from imagegate.tasks.store import TaskView

MAX_WAIT = 60
KEEP_ALIVE_SECONDS = 15.0
_PREFER_WAIT = re.compile(r"(?:^|[,;])\s*wait\s*=\s*\"?([^,;\"\s]*)\"?", re.IGNORECASE)


def wait_seconds(value: str | None, name: str) -> int | None:
    """A wait of 1..MAX_WAIT whole seconds, None when absent; InvalidRequest naming ``name``."""
    if value is None:
        return None
    if not (value.isascii() and value.isdigit() and 1 <= int(value) <= MAX_WAIT):
        raise InvalidRequest(f"{name} must be a whole number of seconds from 1 to {MAX_WAIT}.")
    return int(value)


def preferred_wait(headers: Headers) -> int | None:
    """The ``wait`` preference of the Prefer header (RFC 7240), e.g. ``Prefer: wait=10``."""
    prefer = headers.get("prefer")
    found = _PREFER_WAIT.search(prefer) if prefer else None
    return wait_seconds(found.group(1), "The 'wait' of the 'Prefer' header") if found else None


async def _read(services: Services, account_id: str, task_id: str) -> TaskView:
    task = await services.db.read(lambda tx: store.task_of(tx, account_id, task_id))
    assert task is not None, "tasks are never deleted"
    return task


async def until_final(
    services: Services, account_id: str, task: TaskView, seconds: float
) -> TaskView:
    """``task`` once final, or as it is after ``seconds``."""
    if task.status in FINAL:
        return task
    deadline = asyncio.get_running_loop().time() + seconds
    async with services.watch.watching(task.id) as changes:
        task = await _read(services, account_id, task.id)  # after watching: no change missed
        while task.status not in FINAL:
            changes.seen(task.status)
            remaining = deadline - asyncio.get_running_loop().time()
            if not await changes.wait(remaining):
                break
            task = await _read(services, account_id, task.id)
    return task


async def status_events(services: Services, account_id: str, task_id: str) -> AsyncIterator[bytes]:
    """Server-sent events: ``status`` with the task object at once and on each change, a comment
    every KEEP_ALIVE_SECONDS, the end after the final status."""
    async with services.watch.watching(task_id) as changes:
        task = await _read(services, account_id, task_id)
        yield _event(task, services.public_url)
        while task.status not in FINAL:
            changes.seen(task.status)
            if not await changes.wait(KEEP_ALIVE_SECONDS):
                if changes.draining:
                    return  # the process is stopping; the client reconnects to another
                yield b": keep-alive\n\n"
                continue
            now = await _read(services, account_id, task_id)
            if now != task:
                yield _event(now, services.public_url)
            task = now


def _event(task: TaskView, public_url: str) -> bytes:
    return b"event: status\ndata: " + task_json(task, public_url) + b"\n\n"

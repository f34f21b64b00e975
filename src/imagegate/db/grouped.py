"""Work written in groups, one group at a time: callers that arrive while a group is being
written go together in the next. Under load one statement carries many of them, and a busier
process writes bigger groups; at low load each goes alone, at once.
"""

from __future__ import annotations

import asyncio
import contextvars
import copy
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

Item = TypeVar("Item")
R = TypeVar("R")


class Grouped(Generic[Item, R]):
    """``write`` takes a group of at most ``most`` items and returns a result for each, in
    order."""

    def __init__(self, write: Callable[[Sequence[Item]], Awaitable[list[R]]], most: int) -> None:
        self._write = write
        self._most = most
        self._waiting: list[tuple[Item, asyncio.Future[R]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def submit(self, item: Item) -> R:
        """``item``'s result, once a group with it was written (its exception, if that raised).
        A caller cancelled before its group was sent leaves nothing of its item in it."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        if self._writer is None:
            # Its own context: a group's logs carry no one caller's request id.
            self._writer = asyncio.create_task(self._drain(), context=contextvars.Context())
        return await future

    async def _drain(self) -> None:
        group: list[tuple[Item, asyncio.Future[R]]] = []
        try:
            while self._waiting:
                taken, self._waiting = self._waiting[: self._most], self._waiting[self._most :]
                group = [(item, future) for item, future in taken if not future.done()]
                if group:
                    await self._write_group(group)
        finally:
            self._writer = None
            # Stopped (cancelled at shutdown, or worse): no caller waits for a writer that is
            # gone; they get an error of their own, not a cancellation that is not theirs.
            for _, future in group + self._waiting:
                if not future.done():
                    future.set_exception(GroupStopped("the group's write was stopped"))
            self._waiting = []

    async def _write_group(self, group: list[tuple[Item, asyncio.Future[R]]]) -> None:
        try:
            results = await self._write([item for item, _ in group])
        except Exception as exc:  # each caller of the group gets it
            for _, future in group:
                if not future.done():
                    future.set_exception(_own(exc))
            return
        for (_, future), result in zip(group, results, strict=True):
            if not future.done():
                future.set_result(result)


def _own(exc: Exception) -> Exception:
    """A caller's own copy of its group's exception, of the same type and caused by it: one
    object raised in every caller would collect each caller's frames in its traceback."""
    try:
        copied = copy.copy(exc)
    except Exception:  # (a type that cannot be copied: the one object, then)
        return exc
    copied.__cause__ = exc
    return copied


class GroupStopped(RuntimeError):
    """The writer stopped before it wrote the caller's group."""

"""db/grouped.py: what arrives while a group is written goes together in the next group, each
caller gets its own item's result, and a caller that left before its group was sent is not in it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from imagegate.db.grouped import Grouped, GroupStopped


class Writes:
    """A write that records each group and holds it until released."""

    def __init__(self) -> None:
        self.groups: list[list[int]] = []
        self.release = asyncio.Event()
        self.written = asyncio.Condition()

    async def __call__(self, items: Sequence[int]) -> list[int]:
        async with self.written:
            self.groups.append(list(items))
            self.written.notify_all()
        await self.release.wait()
        if 13 in items:
            raise ValueError("unlucky group")
        return [item * 10 for item in items]


async def started(writes: Writes, groups: int) -> None:
    async with asyncio.timeout(5), writes.written:
        await writes.written.wait_for(lambda: len(writes.groups) >= groups)


async def test_callers_that_arrive_during_a_write_go_together_in_the_next() -> None:
    writes = Writes()
    grouped = Grouped(writes, most=3)
    first = asyncio.create_task(grouped.submit(1))
    await started(writes, 1)
    rest = [asyncio.create_task(grouped.submit(n)) for n in range(2, 7)]
    await asyncio.sleep(0)
    assert writes.groups == [[1]]  # the others wait for the write in flight
    writes.release.set()
    assert await first == 10
    assert await asyncio.gather(*rest) == [20, 30, 40, 50, 60]
    assert writes.groups == [[1], [2, 3, 4], [5, 6]]  # at most 3 a group


async def test_a_failed_group_fails_its_callers_only() -> None:
    writes = Writes()
    grouped = Grouped(writes, most=2)
    first = asyncio.create_task(grouped.submit(1))
    await started(writes, 1)
    unlucky = [asyncio.create_task(grouped.submit(n)) for n in (12, 13)]
    after = asyncio.create_task(grouped.submit(4))
    writes.release.set()
    assert await first == 10
    raised = []
    for task in unlucky:
        with pytest.raises(ValueError, match="unlucky") as caught:
            await task
        raised.append(caught.value)
    assert await after == 40
    assert writes.groups == [[1], [12, 13], [4]]
    # Each caller raised an exception of its own, caused by the group's: its traceback holds
    # its own frames, not every caller's.
    assert raised[0] is not raised[1]
    assert raised[0].__cause__ is raised[1].__cause__
    assert isinstance(raised[0].__cause__, ValueError)


async def test_a_caller_gone_before_its_group_was_sent_is_left_out() -> None:
    writes = Writes()
    grouped = Grouped(writes, most=10)
    first = asyncio.create_task(grouped.submit(1))
    await started(writes, 1)
    gone = asyncio.create_task(grouped.submit(2))
    stays = asyncio.create_task(grouped.submit(3))
    await asyncio.sleep(0)
    gone.cancel()
    writes.release.set()
    assert await first == 10
    assert await stays == 30
    assert gone.cancelled()
    assert writes.groups == [[1], [3]]


async def test_callers_get_an_error_when_the_writer_is_stopped() -> None:
    """A writer cancelled mid-write (a shutdown): its group's callers and those waiting for the
    next group get an error of their own instead of waiting for ever."""
    writes = Writes()
    grouped = Grouped(writes, most=10)
    writing = asyncio.create_task(grouped.submit(1))
    await started(writes, 1)
    waiting = asyncio.create_task(grouped.submit(2))
    await asyncio.sleep(0)
    writer = grouped._writer
    assert writer is not None
    writer.cancel()
    async with asyncio.timeout(5):  # (before, the waiting caller waited for ever)
        for caller in (writing, waiting):
            with pytest.raises(GroupStopped):
                await caller
    writes.release.set()
    assert await grouped.submit(3) == 30  # a new writer for what comes next

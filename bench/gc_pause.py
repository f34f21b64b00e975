"""The garbage collector in an `imagegate serve` process: how long a full collection stops it
before and after heap.settle() (gc.freeze; `imagegate serve` and `imagegate worker` call it
after start-up), and how much of each create its young collections take at Python's threshold
(700) and at heap.YOUNGEST, which settle() sets.

    .venv/bin/python bench/gc_pause.py
"""

from __future__ import annotations

import asyncio
import gc
import tempfile
import time
from pathlib import Path
from typing import Any

import hot_path_cost
from imagegate import heap
from imagegate.app import create_app
from imagegate.config import Settings

CREATES = 8_000
AT_ONCE = 32  # creates in flight, as wrk's 32 connections keep them (bench/run.py)


def _full_collection_ms() -> float:
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        gc.collect()
        best = min(best, (time.perf_counter() - started) * 1000)
    return best


class Collections:
    """The collections that run meanwhile, and the time they take (gc.callbacks)."""

    def __init__(self) -> None:
        self.count, self.seconds, self._started = 0, 0.0, 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.count += 1
            self.seconds += time.perf_counter() - self._started


async def _client(app: Any, key: str) -> None:
    """One connection's creates, one after another, each in a task of its own as uvicorn runs
    each request."""
    for _ in range(CREATES // AT_ONCE):
        await asyncio.create_task(
            hot_path_cost._per_call(app, "POST", "/v1/images/generations", b"", key, calls=1)
        )


async def _young_collections() -> None:
    """Creates through the whole ASGI app in this process (bench/hot_path_cost.py), AT_ONCE in
    flight, at each threshold (one at a time, a create frees all it made before the next and
    the collector never runs)."""
    async with hot_path_cost.started_app() as (app, _, key):
        await _client(app, key)  # warm
        heap.settle()
        print(f"\n| threshold of the youngest generation | collections per {CREATES:,}"
              f" creates, {AT_ONCE} at a time | µs of each create in them |"
              "\n| --- | --- | --- |")  # fmt: skip
        _, older, oldest = gc.get_threshold()
        for young in (700, heap.YOUNGEST):
            gc.set_threshold(young, older, oldest)
            seen = Collections()
            gc.callbacks.append(seen)
            await asyncio.gather(*[_client(app, key) for _ in range(AT_ONCE)])
            gc.callbacks.remove(seen)
            print(f"| {young:,} | {seen.count:,} | {seen.seconds / CREATES * 1e6:.1f} |")


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as data_dir:
        app = create_app(Settings(data_dir=Path(data_dir)))
        tracked = len(gc.get_objects())
        before = _full_collection_ms()
        heap.settle()
        after = _full_collection_ms()
    print("| full collection | objects it walks | pause (best of 3) |\n| --- | --- | --- |")
    print(f"| after start-up | {tracked:,} | {before:.1f} ms |")
    walked, frozen = len(gc.get_objects()), gc.get_freeze_count()
    print(f"| after heap.settle() ({frozen:,} frozen) | {walked:,} | {after:.2f} ms |")
    asyncio.run(_young_collections())

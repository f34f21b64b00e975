"""How long a full garbage collection stops an `imagegate serve` process once started, before and
after heap.settle() (gc.freeze; `imagegate serve` and `imagegate worker` call it after start-up).

    .venv/bin/python bench/gc_pause.py
"""

from __future__ import annotations

import gc
import tempfile
import time
from pathlib import Path

from imagegate import heap
from imagegate.app import create_app
from imagegate.config import Settings


def _full_collection_ms() -> float:
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        gc.collect()
        best = min(best, (time.perf_counter() - started) * 1000)
    return best


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

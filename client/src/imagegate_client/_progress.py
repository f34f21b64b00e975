"""The CLI's progress display while a task runs."""

from __future__ import annotations

import threading
import time
from types import TracebackType
from typing import TextIO

from imagegate_client._models import Task

FRAMES = "|/-\\"
TICK = 0.1  # seconds between spinner frames


class Progress:
    """A task's status and elapsed time on ``stream``: on a terminal, one spinner line redrawn
    in place (``\\r``) every tick; elsewhere (a pipe, a log file), one plain line per status
    change. Use as a context manager around the wait, feeding it each polled task."""

    def __init__(self, stream: TextIO, task_id: str) -> None:
        self.stream, self.task_id = stream, task_id
        self.tty = stream.isatty()
        self.status = "pending"
        self.started = time.monotonic()
        self._frame = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ticker = threading.Thread(target=self._tick, daemon=True)

    def __enter__(self) -> Progress:
        if self.tty:
            self._draw()
            self._ticker.start()
        else:
            self._line()
        return self

    def update(self, task: Task) -> None:
        """Show ``task``'s status (a plain line only when it changed)."""
        with self._lock:
            changed, self.status = task.status != self.status, task.status
            if changed and not self.tty:
                self._line()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if not self.tty:
            return
        self._stop.set()
        self._ticker.join()
        with self._lock:  # replace the spinner with the final state
            self.stream.write(f"\r\x1b[K{self.status} after {self._elapsed():.1f}s\n")
            self.stream.flush()

    def _tick(self) -> None:
        while not self._stop.wait(TICK):
            with self._lock:
                self._frame += 1
                self._draw()

    def _draw(self) -> None:
        frame = FRAMES[self._frame % len(FRAMES)]
        self.stream.write(f"\r{frame} {self.status} {self._elapsed():.1f}s  task {self.task_id}")
        self.stream.flush()

    def _line(self) -> None:
        self.stream.write(f"task {self.task_id}: {self.status} ({self._elapsed():.1f}s)\n")
        self.stream.flush()

    def _elapsed(self) -> float:
        return time.monotonic() - self.started

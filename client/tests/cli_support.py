"""Running the `imagegate` console script as a user does: in a process, on a pipe or a terminal."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

IMAGEGATE = str(Path(sys.executable).parent / "imagegate")
DEADLINE = 60.0


def cli_env(base_url: str, api_key: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMAGEGATE_")}
    return {**env, "IMAGEGATE_BASE_URL": base_url, "IMAGEGATE_API_KEY": api_key}


def run_piped(
    *args: str, env: dict[str, str], cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [IMAGEGATE, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=DEADLINE
    )


@dataclass
class TerminalRun:
    returncode: int
    terminal: str  # what reached the terminal (stderr), as the user saw it
    stdout: str


def run_on_terminal(*args: str, env: dict[str, str], cwd: Path) -> TerminalRun:
    """`imagegate ARGS` with stderr on a pseudo-terminal; stdout is piped, to tell them apart."""
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [IMAGEGATE, *args], env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=terminal,
    )  # fmt: skip
    os.close(terminal)
    seen = bytearray()
    deadline = time.monotonic() + DEADLINE
    try:
        while (remaining := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select([controller], [], [], remaining)
            if not ready:
                break
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # EIO: the process closed its end
                break
            if not chunk:
                break
            seen += chunk
    finally:
        os.close(controller)
        if process.poll() is None and time.monotonic() > deadline:
            process.kill()
    assert process.stdout is not None
    stdout = process.stdout.read().decode()
    process.stdout.close()
    return TerminalRun(process.wait(timeout=DEADLINE), seen.decode(), stdout)

"""What a benchmark run ran on: the server stack (from SERVER_OPTIONS) and the machine."""

from __future__ import annotations

import os
import platform
import re
import socket
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Collection
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from urllib.parse import urlsplit

import psycopg

from imagegate.app import SERVER_OPTIONS
from procs import PG_ADMIN, REDIS_URL, ensure_wrk

UVICORN_DEFAULTS = {"loop": "auto", "http": "auto"}


def _package(name: str) -> str:
    """``name`` and its installed version; a bare name for what ships with Python (asyncio)."""
    try:
        return f"{name} {version(name)}"
    except PackageNotFoundError:
        return name


def server_stack() -> str:
    """Python, uvicorn and the loop and HTTP parser every server of the run (bare app too) uses."""
    options = UVICORN_DEFAULTS | SERVER_OPTIONS
    rest = ", ".join(f"{k}={v}" for k, v in options.items() if k not in UVICORN_DEFAULTS)
    return (
        f"Python {platform.python_version()}, {_package('uvicorn')} "
        f"(loop: {_package(options['loop'])}, http: {_package(options['http'])}, {rest}), "
        f"{_package('fastapi')}, {_package('pydantic')}, {_package('SQLAlchemy')}"
    )


def stores(backends: Collection[str]) -> str:
    """The database servers the run used, with their versions."""
    found = [f"SQLite {sqlite3.sqlite_version}"] if "sqlite" in backends else []
    if "postgres" in backends:
        with psycopg.connect(PG_ADMIN) as conn:
            row = conn.execute("SHOW server_version").fetchone()
        drivers = f"request path: {_package('asyncpg')}; ORM and jobs: {_package('psycopg')}"
        found += [f"PostgreSQL {row[0] if row else '?'} ({drivers})"]
        found += [f"Redis {_redis_version()}"]
    return ", ".join(found) or "none"


def _redis_version() -> str:
    url = urlsplit(REDIS_URL)
    with socket.create_connection((url.hostname or "127.0.0.1", url.port or 6379), 2) as sock:
        sock.sendall(b"INFO server\r\n")
        match = re.search(r"redis_version:(\S+)", sock.recv(65536).decode(errors="replace"))
    return match.group(1) if match else "?"


def machine() -> str:
    """CPUs, memory, kernel, and how busy the machine already was (others may share it)."""
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.M)
    mem = re.search(r"MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text())
    load1 = os.getloadavg()[0]
    return (
        f"{os.cpu_count()} CPUs ({model.group(1) if model else platform.machine()}), "
        f"{int(mem.group(1)) / 2**20 if mem else float('nan'):.1f} GiB, "
        f"{platform.system()} {platform.release()}; load average {load1:.2f} at start"
    )


def load_generator(seconds: int, connections: int) -> str:
    """wrk's version and how each measurement runs it."""
    banner = subprocess.run([ensure_wrk(), "-v"], capture_output=True, text=True).stdout
    name = banner.split(" [", 1)[0] if banner.startswith("wrk") else "wrk"
    return f"{name}, 1 thread, {connections} connections, {seconds} s per measurement"


def disk(files: int = 200, apart: float = 0.02) -> str:
    """How long the disk under the benchmarks' data takes to make a new file durable, as the
    image store does for each image (write, fsync, rename): p50, p99 and max of ``files``, one
    every ``apart`` seconds (back to back, the kernel's periodic flushes fall between them).
    Its slowest percent shows in the end-to-end rows' p99: an image is stored before its task
    completes, and PostgreSQL's commits wait on the same disk."""
    times = []
    data = os.urandom(150_000)  # about a simulator's picture
    with tempfile.TemporaryDirectory() as folder:
        for n in range(files):
            started = time.perf_counter()
            path = Path(folder) / f"{n}.partial"
            with open(path, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            path.replace(path.with_suffix(".png"))
            times.append((time.perf_counter() - started) * 1000)
            time.sleep(apart)
    times.sort()
    p50, p99 = times[len(times) // 2], times[min(len(times) - 1, len(times) * 99 // 100)]
    return (
        f"a new file made durable (write, fsync, rename) in {p50:.1f} / {p99:.1f} /"
        f" {times[-1]:.1f} ms (p50 / p99 / max of {files})"
    )


def header(backends: Collection[str]) -> list[str]:
    """The lines printed once at the top of a run."""
    return [
        f"**Server stack:** {server_stack()}.",
        f"**Stores:** {stores(backends)}.",
        f"**Machine:** {machine()}.",
        f"**Disk:** {disk()}.",
    ]

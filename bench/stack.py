"""What a benchmark run ran on: the server stack (from SERVER_OPTIONS) and the machine."""

from __future__ import annotations

import os
import platform
import re
import socket
import sqlite3
import subprocess
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


def header(backends: Collection[str]) -> list[str]:
    """The lines printed once at the top of a run."""
    return [
        f"**Server stack:** {server_stack()}.",
        f"**Stores:** {stores(backends)}.",
        f"**Machine:** {machine()}.",
    ]

"""Processes for the benchmarks: imagegate, the baseline app, fakes, and wrk; with their cleanup."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg

BENCH = Path(__file__).resolve().parent
PY = sys.executable
TITLES = {"sqlite": "SQLite (embedded)", "postgres": "PostgreSQL + Redis"}
PG_ADMIN = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def spawned(
    args: list[str], env: dict[str, str] | None = None, log_to: list[str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """A child process, killed on the way out; its output goes to a log under /tmp (whose path
    is appended to ``log_to``, if given)."""
    log = tempfile.NamedTemporaryFile(prefix="bench-", suffix=".log", delete=False)  # noqa: SIM115
    if log_to is not None:
        log_to.append(log.name)
    process = subprocess.Popen(args, env={**os.environ, **(env or {})}, stdout=log, stderr=log)
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def wait_http(url: str, within: float = 60) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {within}s")


@dataclass
class Backend:
    """Where imagegate keeps state for one run: a fresh SQLite file or PostgreSQL database."""

    name: str  # sqlite | postgres
    data_dir: Path
    database_url: str

    @property
    def title(self) -> str:
        return TITLES[self.name]

    def env(self, port: int, **extra: Any) -> dict[str, str]:
        env = {
            "IMAGEGATE_DATA_DIR": str(self.data_dir),
            "IMAGEGATE_DATABASE_URL": self.database_url,
            "IMAGEGATE_PORT": str(port),
            "IMAGEGATE_SIMULATOR_DELAY": "0",
            "IMAGEGATE_RATE_LIMIT_PER_MINUTE": "1000000000",
            "IMAGEGATE_ACCESS_LOG": "false",
            "IMAGEGATE_SECRET_KEY": "bench-secret",
        }
        if self.name == "postgres":
            env["IMAGEGATE_REDIS_URL"] = REDIS_URL
        return env | {f"IMAGEGATE_{k.upper()}": str(v) for k, v in extra.items()}


@contextmanager
def backend(name: str) -> Iterator[Backend]:
    data_dir = Path(tempfile.mkdtemp(prefix=f"bench-{name}-"))
    if name == "sqlite":
        yield Backend(name, data_dir, f"sqlite+aiosqlite:///{data_dir / 'imagegate.db'}")
        shutil.rmtree(data_dir, ignore_errors=True)
        return
    database = f"bench_{uuid.uuid4().hex[:12]}"
    _pg(f"CREATE DATABASE {database}")
    base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    try:
        yield Backend(name, data_dir, f"{base}/{database}")
    finally:
        _pg(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        shutil.rmtree(data_dir, ignore_errors=True)


def _pg(sql: str) -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(sql)  # type: ignore[arg-type]


def imagegate(*args: str) -> list[str]:
    return [PY, "-m", "imagegate", *args]


def provision(env: dict[str, str], credits: int = 10**12) -> str:
    """Migrate, create an account with ``credits`` and return a fresh key for it."""
    return provision_accounts(env, 1, credits)[0]


def provision_accounts(env: dict[str, str], count: int, credits: int = 10**12) -> list[str]:
    """Migrate, create ``count`` accounts with ``credits`` each, and return one key per account.

    Two helper processes share the work (bench/accounts.py: the admin CLI in one process).
    """
    run = {"env": {**os.environ, **env}, "check": True, "capture_output": True, "text": True}
    subprocess.run(imagegate("db", "upgrade"), **run)  # type: ignore[call-overload]

    def create(n: int) -> list[str]:
        helper = [PY, str(BENCH / "accounts.py"), str(n), str(credits)]
        return list(json.loads(subprocess.run(helper, **run).stdout))  # type: ignore[call-overload]

    shares = [n for n in (count // 2, count - count // 2) if n > 0]
    with ThreadPoolExecutor(len(shares)) as pool:
        return [key for keys in pool.map(create, shares) for key in keys]


def peak_rss_mib(pid: int) -> float:
    """The process's peak resident set (VmHWM) so far, in MiB."""
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"VmHWM:\s+(\d+) kB", status)
    return int(match.group(1)) / 1024 if match else float("nan")


def ensure_wrk() -> str:
    wrk = shutil.which("wrk")
    if wrk is None:
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})  # fmt: skip
        wrk = shutil.which("wrk")
    assert wrk is not None, "wrk is needed: apt-get install wrk"
    return wrk


@dataclass
class Load:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    bad: int  # non-2xx answers and socket errors


def wrk(url: str, script: str, key: str, seconds: int, connections: int) -> Load:
    """wrk with one thread (one core: the other is the server's) against ``url``."""
    out = subprocess.run(
        [ensure_wrk(), "-t1", f"-c{connections}", f"-d{seconds}s", "--latency",
         "-s", str(BENCH / "wrk" / script), url],
        env={**os.environ, "BENCH_KEY": key}, check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    return _parse_wrk(out)


def _parse_wrk(out: str) -> Load:
    def latency(pct: str) -> float:
        match = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        assert match, out
        return float(match.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[match.group(2)]

    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    bad = int(non2xx.group(1)) if non2xx else 0
    bad += sum(int(n) for n in errors.groups()) if errors else 0
    assert rps, out
    assert total, out
    return Load(float(rps.group(1)), latency("50"), latency("99"), int(total.group(1)), bad)

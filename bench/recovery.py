"""Recovery after kill -9: how long tasks in flight wait before they run again.

PostgreSQL (scale-out): `serve --no-worker`, worker A takes TASKS tasks (the simulator holds each
for DELAY s), worker B idles beside it; A is killed with SIGKILL. Measured: from the kill to each
of A's jobs starting again on B (procrastinate's 'started' events, on the database's clock,
which is this machine's), and to every task completed.

SQLite (embedded): `imagegate serve` runs TASKS tasks in its own worker and is killed with
SIGKILL mid-run, then started again. Measured: from the new process's start to every task
completed, minus DELAY (the simulator's time, which a resumed task spends again).
"""

from __future__ import annotations

import signal
import statistics
import time
from collections.abc import Callable
from contextlib import ExitStack

import httpx
import psycopg

from procs import TITLES, Backend, backend, free_port, imagegate, provision, spawned, wait_http

TASKS = 30  # fewer than a pool holds (32): all are in flight at the kill
DELAY = 5.0
BODY = {"model": "ideogram-v4", "input": {"prompt": "bench", "rendering_speed": "TURBO"}}


def _create(http: httpx.Client) -> list[str]:
    return [
        http.post("/v1/images/generations", json=BODY).json()["data"]["taskId"]
        for _ in range(TASKS)
    ]


def _wait(http: httpx.Client, task_ids: list[str], want: str, within: float = 120) -> None:
    """Until every task shows ``want`` (or, for processing, has got at least that far)."""
    deadline = time.monotonic() + within
    later = {"processing": {"processing", "completed", "failed"}}.get(want, {want})
    for task_id in task_ids:
        while http.get(f"/v1/tasks/{task_id}").json()["status"] not in later:
            if time.monotonic() > deadline:
                raise RuntimeError(f"task {task_id} did not reach {want} within {within}s")
            time.sleep(0.02)


def _client(port: int, key: str) -> httpx.Client:
    headers = {"Authorization": f"Bearer {key}"}
    return httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=30)


def _pg_dsn(b: Backend) -> str:
    return b.database_url.replace("postgresql+psycopg://", "postgresql://", 1)


def _worker_ids(dsn: str) -> list[int]:
    with psycopg.connect(dsn) as conn:
        return [row[0] for row in conn.execute("SELECT id FROM procrastinate_workers")]


def _resumed(dsn: str, killed_at: float, others_than: list[int], jobs: int) -> list[float]:
    """Seconds from the kill until each task job is seen running on a worker other than
    ``others_than`` (polled every 20 ms; finished jobs are deleted, so they are watched live)."""
    seen: dict[int, float] = {}
    deadline = time.monotonic() + 60
    with psycopg.connect(dsn, autocommit=True) as conn:
        while len(seen) < jobs and time.monotonic() < deadline:
            rows = conn.execute(
                "SELECT id FROM procrastinate_jobs WHERE task_name = 'run_task'"
                " AND status = 'doing' AND NOT (worker_id = ANY(%(a)s))",
                {"a": others_than},
            )
            now = time.time() - killed_at
            for (job_id,) in rows:
                seen.setdefault(job_id, now)
            time.sleep(0.02)
    return sorted(seen.values())


def scale_out(row: Callable[..., None]) -> None:
    with backend("postgres") as b, ExitStack() as stack:
        port = free_port()
        env = b.env(port, simulator_delay=DELAY)
        key = provision(env)
        stack.enter_context(spawned(imagegate("serve", "--no-worker"), env))
        wait_http(f"http://127.0.0.1:{port}/healthz")
        worker_a = stack.enter_context(spawned(imagegate("worker"), env))
        dsn = _pg_dsn(b)
        while len(a_ids := _worker_ids(dsn)) < 2:  # A's two pools (tasks, callbacks)
            time.sleep(0.05)
        with _client(port, key) as http:
            task_ids = _create(http)
            _wait(http, task_ids, "processing")  # A holds them all, each for DELAY s
            stack.enter_context(spawned(imagegate("worker"), env))  # B
            while len(_worker_ids(dsn)) < 4:
                time.sleep(0.05)
            worker_a.send_signal(signal.SIGKILL)
            killed_at = time.time()
            resumed = _resumed(dsn, killed_at, a_ids, TASKS)
            _wait(http, task_ids, "completed")
            done = time.time() - killed_at
    row(
        f"worker SIGKILL → its jobs start on another worker, {TITLES['postgres']}",
        f"{len(resumed)}/{TASKS}",
        f"{statistics.median(resumed):.1f} s" if resumed else "—",
        f"{resumed[-1]:.1f} s" if resumed else "—",
        f"all completed {done:.1f} s after the kill (D = {DELAY:.0f} s)",
    )


def embedded(row: Callable[..., None]) -> None:
    with backend("sqlite") as b:
        port = free_port()
        env = b.env(port, simulator_delay=DELAY)
        key = provision(env)
        with ExitStack() as first:
            server = first.enter_context(spawned(imagegate("serve"), env))
            wait_http(f"http://127.0.0.1:{port}/healthz")
            with _client(port, key) as http:
                task_ids = _create(http)
                _wait(http, task_ids, "processing")
            server.send_signal(signal.SIGKILL)
            server.wait()
        started = time.time()
        with spawned(imagegate("serve"), env), _client(port, key) as http:
            wait_http(f"http://127.0.0.1:{port}/healthz")
            ready = time.time() - started
            _wait(http, task_ids, "completed")
            done = time.time() - started - DELAY
    row(
        f"serve SIGKILL, restart → tasks in flight completed (minus D), {TITLES['sqlite']}",
        f"{TASKS}/{TASKS}",
        f"{done:.1f} s from the restart",
        f"answering after {ready:.1f} s",
        f"D = {DELAY:.0f} s",
    )


def measure_recovery(backends: list[str], row: Callable[..., None]) -> None:
    if "postgres" in backends:
        scale_out(row)
    if "sqlite" in backends:
        embedded(row)

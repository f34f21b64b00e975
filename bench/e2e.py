"""End-to-end overhead: create -> completed visible, and -> callback received, minus the delay D.

After WARMUP tasks run one by one and not counted, tasks are created at a steady rate with a
callback_url on a loopback receiver (in this process, timestamping arrivals); each task is polled
every POLL seconds until it shows ``completed``.
The simulator takes exactly D seconds, so whatever is above D is the gateway's own cost (job
pickup, two transactions, image encoding and storage, callback signing and delivery).
The jobs run in `imagegate serve`'s in-process worker, or (scale-out) in a separate
`imagegate worker` process next to `imagegate serve --no-worker`.
"""

from __future__ import annotations

import asyncio
import sqlite3
import statistics
import time
from collections.abc import Callable
from contextlib import ExitStack

import httpx
import psycopg

from procs import TITLES, Backend, backend, free_port, imagegate, provision, spawned, wait_http

DELAY = 0.5  # D, seconds
TASKS = 150
# Run first and not counted: a fresh process's first tasks open its connections and prepare its
# statements (a one-off 50-100 ms each); the rows measure the steady state.
WARMUP = 5
RATE = 2.0  # tasks created per second: ~1 in flight, so polling load stays light
POLL = 0.01


class Receiver:
    """A minimal HTTP/1.1 callback receiver: records when each task's callback arrived."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            at = time.time()
            headers = dict(
                line.decode().lower().split(": ", 1) for line in head.split(b"\r\n")[1:] if line
            )
            await reader.readexactly(int(headers.get("content-length", "0")))
            self.arrived.setdefault(headers.get("x-task-id", ""), at)
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            await writer.drain()
        finally:
            writer.close()


def _pct(values: list[float], q: int) -> float:
    """The q-th percentile in ms (inclusive: never beyond the slowest value)."""
    if len(values) < 2:
        return float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] * 1000


async def _one(http: httpx.AsyncClient, body: dict[str, object]) -> tuple[str, float, float]:
    """The task's id, when its create was sent and when it was first seen completed (wall clock:
    the server stamps its rows with the same clock, see _phases)."""
    sent = time.time()
    response = await http.post("/v1/images/generations", json=body)
    response.raise_for_status()
    task_id = response.json()["data"]["taskId"]
    while True:
        status = (await http.get(f"/v1/tasks/{task_id}")).json()["status"]
        if status == "completed":
            return task_id, sent, time.time()
        assert status != "failed"
        await asyncio.sleep(POLL)


_STAMPS = "SELECT id, created_at, started_at, completed_at FROM tasks"


Phases = dict[str, str]  # step -> "p50 / p99 / max" in ms


def _phases(
    b: Backend, results: list[tuple[str, float, float]], arrived: dict[str, float]
) -> Phases:
    """Where the overhead goes, from the server's stamps on each task row (same machine, same
    wall clock): p50, p99 and max in ms of each step."""
    if b.name == "sqlite":
        with sqlite3.connect(b.data_dir / "imagegate.db") as conn:
            rows = conn.execute(_STAMPS).fetchall()
    else:
        with psycopg.connect(b.database_url.replace("+psycopg", "")) as pg:
            rows = pg.execute(_STAMPS).fetchall()
    stamps = {row[0]: row[1:] for row in rows}
    steps: dict[str, list[float]] = {}
    for task_id, sent, done in results:
        created, started, completed = stamps[task_id]
        for step, seconds in (
            ("create answered (client → server's stamp)", created - sent),
            ("pickup (created → run started)", started - created),
            ("run over D (provider, images stored)", completed - started - DELAY),
            ("seen (completed → client sees it)", done - completed),
            ("callback (completed → received)", arrived.get(task_id, float("nan")) - completed),
        ):
            steps.setdefault(step, []).append(seconds)
    return {
        step: f"{_pct(values, 50):.1f} / {_pct(values, 99):.1f} / {max(values) * 1000:.1f}"
        for step, values in steps.items()
    }


def _servers(stack: ExitStack, env: dict[str, str], separate_worker: bool) -> None:
    """`imagegate serve` with its in-process worker, or `serve --no-worker` + `imagegate worker`."""
    if separate_worker:
        stack.enter_context(spawned(imagegate("serve", "--no-worker"), env))
        stack.enter_context(spawned(imagegate("worker"), env))
    else:
        stack.enter_context(spawned(imagegate("serve"), env))


async def _drive(port: int, key: str, hook_port: int, tasks: int) -> list[tuple[str, float, float]]:
    """Create ``tasks`` tasks at RATE per second and wait until each shows completed."""
    body: dict[str, object] = {
        "model": "ideogram-v4",
        "callback_url": f"http://127.0.0.1:{hook_port}/hook",
        "input": {"prompt": "bench", "rendering_speed": "TURBO", "size": "1:1"},
    }
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=headers) as http:
        for _ in range(WARMUP):
            await _one(http, body)
        runs = []
        for _ in range(tasks):
            runs.append(asyncio.create_task(_one(http, body)))
            await asyncio.sleep(1 / RATE)
        return await asyncio.gather(*runs)


async def measure_e2e(
    name: str, row: Callable[..., None], tasks: int = TASKS, separate_worker: bool = False
) -> tuple[str, Phases]:
    """Two rows: overhead to completed visible, and to callback received (p50, p99 in ms); and
    where it went (a column of the phases table, and its title)."""
    receiver = Receiver()
    hook_port = free_port()
    server = await asyncio.start_server(receiver.handle, "127.0.0.1", hook_port)
    with backend(name) as b, ExitStack() as stack:
        port = free_port()
        env = b.env(port, simulator_delay=DELAY, callback_allow_private="true")
        key = provision(env)
        _servers(stack, env, separate_worker)
        await asyncio.to_thread(wait_http, f"http://127.0.0.1:{port}/healthz")
        results = await _drive(port, key, hook_port, tasks)
        expected = {task_id for task_id, _, _ in results}
        deadline = time.monotonic() + 30
        while len(expected & receiver.arrived.keys()) < tasks and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        phases = _phases(b, results, receiver.arrived)
    server.close()
    visible = [done - sent - DELAY for _, sent, done in results]
    called = [receiver.arrived[t] - sent - DELAY for t, sent, _ in results if t in receiver.arrived]
    how = "serve --no-worker + imagegate worker" if separate_worker else "serve (in-process worker)"
    for what, values in (("completed visible", visible), ("callback received", called)):
        row(f"create → {what}, {TITLES[name]}, {how}", f"{len(values)}/{tasks}",
            f"{_pct(values, 50):.1f} ms", f"{_pct(values, 99):.1f} ms")  # fmt: skip
    worker = "separate worker" if separate_worker else "in-process worker"
    return f"{TITLES[name].split(' ')[0]}, {worker}", phases

"""End-to-end overhead: create -> completed visible, and -> callback received, minus the delay D.

Tasks are created at a steady rate with a callback_url on a loopback receiver (in this process,
timestamping arrivals); each task is polled every POLL seconds until it shows ``completed``.
The simulator takes exactly D seconds, so whatever is above D is the gateway's own cost (job
pickup, two transactions, image encoding and storage, callback signing and delivery).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable
from contextlib import ExitStack

import httpx

from procs import backend, free_port, imagegate, provision, spawned, wait_http

DELAY = 0.5  # D, seconds
TASKS = 150
RATE = 2.0  # tasks created per second: ~1 in flight, so polling load stays light
POLL = 0.01


class Receiver:
    """A minimal HTTP/1.1 callback receiver: records when each task's callback arrived."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            at = time.monotonic()
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
    return statistics.quantiles(values, n=100)[q - 1] * 1000 if len(values) > 1 else float("nan")


async def _one(http: httpx.AsyncClient, body: dict[str, object]) -> tuple[str, float, float]:
    sent = time.monotonic()
    response = await http.post("/v1/images/generations", json=body)
    response.raise_for_status()
    task_id = response.json()["data"]["taskId"]
    while True:
        status = (await http.get(f"/v1/tasks/{task_id}")).json()["status"]
        if status == "completed":
            return task_id, sent, time.monotonic()
        assert status != "failed"
        await asyncio.sleep(POLL)


async def measure_e2e(name: str, apis: int, row: Callable[..., None], tasks: int = TASKS) -> None:
    if apis != 1:
        return  # one API process shows the path; more add nothing to one task's latency
    receiver = Receiver()
    hook_port = free_port()
    server = await asyncio.start_server(receiver.handle, "127.0.0.1", hook_port)
    with backend(name) as b, ExitStack() as stack:
        port = free_port()
        env = b.env(port, simulator_delay=DELAY, callback_allow_private="true")
        key = provision(env)
        stack.enter_context(spawned(imagegate("serve"), env))
        await asyncio.to_thread(wait_http, f"http://127.0.0.1:{port}/healthz")
        body = {
            "model": "ideogram-v4",
            "callback_url": f"http://127.0.0.1:{hook_port}/hook",
            "input": {"prompt": "bench", "rendering_speed": "TURBO", "size": "1:1"},
        }
        headers = {"Authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=headers) as http:
            runs = []
            for _ in range(tasks):
                runs.append(asyncio.create_task(_one(http, body)))
                await asyncio.sleep(1 / RATE)
            results = await asyncio.gather(*runs)
            deadline = time.monotonic() + 30
            while len(receiver.arrived) < tasks and time.monotonic() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
    server.close()
    visible = [done - sent - DELAY for _, sent, done in results]
    called = [receiver.arrived[t] - sent - DELAY for t, sent, _ in results if t in receiver.arrived]
    row(f"e2e overhead to completed visible, {name} (D={DELAY}s, {tasks} tasks)", "-", "-", "",
        "", f"{_pct(visible, 50):.1f}", f"{_pct(visible, 99):.1f}")  # fmt: skip
    row(f"e2e overhead to callback received, {name} ({len(called)}/{tasks} arrived)", "-", "-",
        "", "", f"{_pct(called, 50):.1f}", f"{_pct(called, 99):.1f}")  # fmt: skip

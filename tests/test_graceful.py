"""Graceful restarts: SIGTERM stops a process without losing or doubling work.

An API process stops accepting, answers what it has in flight (waits end early, with the task as
it is) and exits 0; a worker stops claiming, finishes its running jobs within the grace and hands
back the rest. A rolling restart of every process of a scale-out deployment while 300 tasks run
loses nothing and charges nothing twice."""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import httpx
import pytest

from harness import BACKEND, REDIS_URL, Account, free_port, wait_for
from imagegate.config import Settings
from imagegate.db.models import Task
from processes import database_view, imagegate_process, ledger_by_task, provision, responds
from receiver import running_receiver

TASKS = 300
PRICE = 28  # BALANCED


async def stop_gracefully(process: asyncio.subprocess.Process, within: float = 30) -> int:
    """SIGTERM, then the exit status once the process has stopped."""
    process.send_signal(signal.SIGTERM)
    async with asyncio.timeout(within):
        return await process.wait()


async def test_sigterm_answers_a_waiting_request_and_the_task_finishes_after_a_restart(
    settings: Settings,
) -> None:
    """`imagegate serve` (embedded worker): a create that waits for its task is answered at the
    SIGTERM with the task as it is, the process exits 0, and the restarted process runs the job
    it handed back to the end."""
    account = await provision(settings, credits=1000)
    env = {"simulator_delay": "20", "shutdown_grace": "1", "redis_url": REDIS_URL}
    port = str(settings.port)
    base = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=base, headers=account.headers, timeout=60) as http:
        async with imagegate_process(settings, "serve", "--port", port, **env) as process:
            await wait_for(lambda: responds(http), within=60)
            body = {"model": "ideogram-v4", "input": {"prompt": "a slow poster"}}
            waiting = asyncio.create_task(
                http.post("/v1/images/generations", json=body, headers={"Prefer": "wait=60"})
            )

            async def running() -> str | None:
                listed = (await http.get("/v1/tasks", params={"status": "processing"})).json()
                return str(listed["data"]["tasks"][0]["id"]) if listed["data"]["tasks"] else None

            task_id = await wait_for(running, within=30)
            assert await stop_gracefully(process) == 0
            answered = await waiting
        assert answered.status_code == 200, answered.text
        assert answered.json()["data"]["task"]["status"] == "processing"
        assert answered.json()["data"]["taskId"] == task_id

        fast = {**env, "simulator_delay": "0"}
        async with imagegate_process(settings, "serve", "--port", port, **fast):
            await wait_for(lambda: responds(http), within=60)

            async def completed() -> bool:
                task = (await http.get(f"/v1/tasks/{task_id}")).json()
                return bool(task["status"] == "completed")

            await wait_for(completed, within=30)
    assert (await database_view(settings, account.id))[2:] == (1000 - PRICE, 1000 - PRICE)


class Fleet:
    """Named imagegate processes that can be restarted one by one."""

    def __init__(self, stack: AsyncExitStack, settings: Settings, env: dict[str, str]) -> None:
        self.stack, self.settings, self.env = stack, settings, env
        self.args: dict[str, tuple[str, ...]] = {}
        self.processes: dict[str, asyncio.subprocess.Process] = {}

    async def start(self, name: str, *args: str) -> None:
        self.args[name] = args
        process = imagegate_process(self.settings, *args, **self.env)
        self.processes[name] = await self.stack.enter_async_context(process)

    async def restart(self, name: str, ready: httpx.AsyncClient | None = None) -> None:
        assert await stop_gracefully(self.processes[name]) == 0, f"{name} did not exit 0"
        await self.start(name, *self.args[name])
        if ready is not None:
            await wait_for(lambda: responds(ready), within=60)


@asynccontextmanager
async def balanced_clients(
    ports: list[int], account: Account
) -> AsyncIterator[list[httpx.AsyncClient]]:
    async with AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(
                httpx.AsyncClient(
                    base_url=f"http://127.0.0.1:{port}", headers=account.headers, timeout=60
                )
            )
            for port in ports
        ]
        for client in clients:
            await wait_for(lambda c=client: responds(c), within=60)
        yield clients


@pytest.mark.skipif(
    BACKEND != "postgres",
    reason="scale-out mode is PostgreSQL + Redis: the postgres pass of ./scripts/test runs this",
)
async def test_a_rolling_restart_of_every_process_loses_nothing_and_charges_once(
    settings: Settings,
) -> None:
    credits = TASKS * PRICE
    account = await provision(settings, credits=credits)
    env = {
        "simulator_delay": "1", "worker_concurrency": "16", "shutdown_grace": "10",
        "callback_allow_private": "true", "callback_retry_delays": "0,1,2", "redis_url": REDIS_URL,
        "database_pool_size": "4", "database_pool_overflow": "4",
    }  # fmt: skip
    ports = [free_port(), free_port()]
    keys: dict[str, str] = {}  # Idempotency-Key -> the task id it got
    retried = Counter[str]()
    async with running_receiver() as receiver, AsyncExitStack() as stack:
        fleet = Fleet(stack, settings, env)
        for n, port in enumerate(ports):
            await fleet.start(f"api{n}", "serve", "--no-worker", "--port", str(port))
        for n in range(2):
            await fleet.start(f"worker{n}", "worker")
        clients = await stack.enter_async_context(balanced_clients(ports, account))

        async def create(n: int) -> None:
            """As a client behind a load balancer does: on a connection the server closed,
            send the same create (same Idempotency-Key) to the other API."""
            key = str(uuid.uuid4())
            body = {"model": "ideogram-v4", "callback_url": receiver.url,
                    "input": {"prompt": f"poster {n}"}}  # fmt: skip
            for attempt in range(20):
                client = clients[(n + attempt) % 2]
                try:
                    response = await client.post(
                        "/v1/images/generations", json=body, headers={"Idempotency-Key": key}
                    )
                except httpx.TransportError:
                    retried[key] += 1
                    continue
                assert response.status_code == 200, response.text
                keys[key] = response.json()["data"]["taskId"]
                return
            raise AssertionError(f"create {n} found no API in 20 tries")

        batches = [range(start, start + TASKS // 4) for start in range(0, TASKS, TASKS // 4)]
        restarts = [("api0", clients[0]), ("api1", clients[1]), ("worker0", None),
                    ("worker1", None)]  # fmt: skip
        for batch, (name, ready) in zip(batches, restarts, strict=True):
            await asyncio.gather(fleet.restart(name, ready), *(create(n) for n in batch))

        async def settled() -> tuple[list[Task], dict[str, str]] | None:
            tasks, callbacks, _, _ = await database_view(settings, account.id)
            finished = all(t.status in ("completed", "failed") for t in tasks)
            notified = all(callbacks.get(t.id) in ("delivered", "failed") for t in tasks)
            return (tasks, callbacks) if finished and notified else None

        tasks, callbacks = await wait_for(settled, within=180, interval=1)

    assert len(keys) == TASKS  # every create was answered, possibly after a retry
    by_id = {task.id: task for task in tasks}
    assert set(keys.values()) == set(by_id)  # one task per key: no retry made a second one
    assert [t.id for t in tasks if t.status != "completed"] == []  # no job lost or given up
    entries = await ledger_by_task(settings, account.id)
    assert entries == Counter({(task_id, "charge"): 1 for task_id in by_id})
    assert (await database_view(settings, account.id))[2:] == (
        credits - PRICE * TASKS,
        credits - PRICE * TASKS,
    )
    assert all(status == "delivered" for status in callbacks.values())
    got = Counter(received.headers["x-task-id"] for received in receiver.received)
    assert set(got) == set(by_id)  # every callback arrived (at least once)

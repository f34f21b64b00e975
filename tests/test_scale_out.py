"""Scale-out under fire: two API processes and two workers on PostgreSQL + Redis; kill -9 a worker
and an API process mid-run; afterwards the books balance and every callback arrived."""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from contextlib import AsyncExitStack

import httpx
import pytest

from harness import BACKEND, REDIS_URL, Account, free_port, wait_for
from imagegate.config import Settings
from imagegate.db.models import Task
from imagegate.keys.policy import PolicyChange
from processes import (
    api_clients,
    database_view,
    imagegate_process,
    ledger_by_task,
    provision,
    responds,
)
from receiver import running_receiver

pytestmark = pytest.mark.skipif(
    BACKEND != "postgres",
    reason="scale-out mode is PostgreSQL + Redis: the postgres pass of ./scripts/test runs this",
)
TASKS = 300


async def test_two_apis_two_workers_survive_kill_9(settings: Settings) -> None:
    credits = TASKS * 28
    account = await provision(settings, credits=credits)
    env = {
        "simulator_delay": "1", "job_stall_seconds": "5", "worker_concurrency": "16",
        "callback_allow_private": "true", "callback_retry_delays": "0,1,2", "redis_url": REDIS_URL,
        "database_pool_size": "4", "database_pool_overflow": "4",  # 4 processes, 32 connections
    }  # fmt: skip
    ports = [free_port(), free_port()]
    async with (
        running_receiver(lambda n: 500 if n % 7 == 0 else 200) as receiver,
        AsyncExitStack() as stack,
    ):
        apis = [
            await stack.enter_async_context(
                imagegate_process(settings, "serve", "--no-worker", "--port", str(port), **env)
            )
            for port in ports
        ]
        workers = [
            await stack.enter_async_context(imagegate_process(settings, "worker", **env))
            for _ in range(2)
        ]
        clients = [
            await stack.enter_async_context(
                httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=account.headers)
            )
            for port in ports
        ]
        for client in clients:
            await wait_for(lambda c=client: responds(c), within=60)

        accepted: list[str] = []
        alive = [True, True]

        async def create(n: int) -> None:
            api = n % 2 if alive[n % 2] else 1 - n % 2
            prompt = f"poster {n}" + (" [simulate:upstream_error]" if n % 10 == 0 else "")
            body = {
                "model": "ideogram-v4",
                "callback_url": receiver.url,
                "input": {"prompt": prompt},
            }
            try:
                response = await clients[api].post("/v1/images/generations", json=body)
            except httpx.TransportError:
                return  # the API process died under this request: it may or may not exist
            assert response.status_code == 200, response.text
            accepted.append(response.json()["data"]["taskId"])

        await asyncio.gather(*[create(n) for n in range(TASKS // 2)])
        workers[0].send_signal(signal.SIGKILL)  # with its jobs in flight
        second_half = [asyncio.create_task(create(n)) for n in range(TASKS // 2, TASKS)]
        await asyncio.sleep(0)
        alive[0] = False
        apis[0].send_signal(signal.SIGKILL)  # with requests in flight
        await asyncio.gather(*second_half)

        async def settled() -> tuple[list[Task], dict[str, str], int, int] | None:
            view = await database_view(settings, account.id)
            tasks, callbacks, _, _ = view
            finished = all(t.status in ("completed", "failed") for t in tasks)
            notified = all(callbacks.get(t.id) in ("delivered", "failed") for t in tasks)
            return view if finished and notified else None

        try:
            tasks, callbacks, balance, ledger = await wait_for(settled, within=180, interval=1)
        except AssertionError:
            tasks, callbacks, _, _ = await database_view(settings, account.id)
            summary = Counter(t.status for t in tasks), Counter(callbacks.values())
            raise AssertionError(
                f"not settled: tasks {summary[0]}, callbacks {summary[1]}"
            ) from None

    by_id = {task.id: task for task in tasks}
    assert set(accepted) <= set(by_id)  # nothing that was accepted is lost
    assert len(accepted) >= TASKS // 2
    entries = await ledger_by_task(settings, account.id)
    failed = {t.id for t in tasks if t.status == "failed"}
    assert all(entries[(task_id, "charge")] == 1 for task_id in by_id)
    assert {task_id for task_id, kind in entries if kind == "refund"} == failed
    assert all(count == 1 for count in entries.values())
    assert balance == ledger == credits - 28 * (len(tasks) - len(failed))
    assert all(t.error_code == "upstream_error" for t in tasks if t.status == "failed")
    answers: dict[str, list[int]] = {f"msg_{task_id}": [] for task_id in by_id}
    for received in receiver.received:
        answers[received.headers["webhook-id"]].append(received.answered)
    for task_id in by_id:  # at least once, at most the policy's 3 attempts, and the log agrees
        answered = answers[f"msg_{task_id}"]
        assert 1 <= len(answered) <= 3, (task_id, answered)
        assert (callbacks[task_id] == "delivered") == (200 in answered), (task_id, answered)


async def test_limits_hold_across_two_api_processes_sharing_redis(settings: Settings) -> None:
    env = {"redis_url": REDIS_URL, "simulator_delay": "5", "database_pool_size": "4"}
    async with AsyncExitStack() as stack:
        clients = await api_clients(stack, settings, **env)

        async def burst(account: Account, n: int = 40) -> Counter[int]:
            body = {"model": "ideogram-v4", "input": {"prompt": "x", "rendering_speed": "TURBO"}}
            responses = await asyncio.gather(*[
                clients[i % 2].post("/v1/images/generations", json=body, headers=account.headers)
                for i in range(n)
            ])  # fmt: skip
            return Counter(r.status_code for r in responses)

        hourly = await provision(settings, 10_000, PolicyChange(hourly_limit="160"))
        assert await burst(hourly) == {200: 10, 429: 30}
        poor = await provision(settings, 7 * 16)
        assert await burst(poor) == {200: 7, 402: 33}
        rated = await provision(settings, 10_000, PolicyChange(rate_limit="5"))
        statuses = [
            (await clients[i % 2].get("/v1/credits", headers=rated.headers)).status_code
            for i in range(8)
        ]
        assert statuses == [200] * 5 + [429] * 3  # one budget, not one per process

    for account, spent in [(hourly, 160), (poor, 112)]:
        _, _, balance, ledger = await database_view(settings, account.id)
        assert balance == ledger
        entries = await ledger_by_task(settings, account.id)
        assert sum(1 for _, kind in entries if kind == "charge") == spent // 16


async def test_a_separate_worker_starts_a_new_job_without_waiting_for_its_poll(
    settings: Settings,
) -> None:
    account = await provision(settings, credits=1000)
    # A poll interval far longer than the test: only the database's notification can wake it.
    env = {"simulator_delay": "0", "worker_poll_interval": "600", "redis_url": REDIS_URL}
    port = free_port()
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(
            imagegate_process(settings, "serve", "--no-worker", "--port", str(port), **env)
        )
        await stack.enter_async_context(imagegate_process(settings, "worker", **env))
        client = await stack.enter_async_context(
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=account.headers)
        )
        await wait_for(lambda: responds(client), within=60)
        for _ in range(3):  # the worker is idle between them, waiting on its long poll
            body = {"model": "ideogram-v4", "input": {"prompt": "x", "rendering_speed": "TURBO"}}
            created = await client.post("/v1/images/generations", json=body)
            task_id = created.json()["data"]["taskId"]

            async def completed(task_id: str = task_id) -> bool:
                task = (await client.get(f"/v1/tasks/{task_id}")).json()
                return bool(task["status"] == "completed")

            await wait_for(completed, within=20)

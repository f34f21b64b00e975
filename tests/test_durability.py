"""SIGKILL the server while tasks are pending and processing: after a restart, nothing is lost."""

from __future__ import annotations

import signal
from typing import Any

import httpx

from harness import wait_for
from imagegate.billing import service as billing
from imagegate.config import Settings
from imagegate.services import build_services
from processes import ledger_by_task, provision, responds, serve_process
from receiver import HANG, running_receiver


async def test_sigkill_with_tasks_in_flight_loses_nothing(settings: Settings) -> None:
    account = await provision(settings, credits=10_000)
    base = f"http://{settings.host}:{settings.port}"
    async with httpx.AsyncClient(base_url=base, headers=account.headers, timeout=10) as http:

        async def statuses(ids: list[str]) -> list[dict[str, Any]]:
            return [(await http.get(f"/v1/tasks/{i}")).json() for i in ids]

        async with serve_process(settings) as process:
            await wait_for(lambda: responds(http), within=30)
            ids = []
            for n in range(16):  # every fourth task fails upstream and must be refunded
                prompt = f"poster {n}" + (" [simulate:upstream_error]" if n % 4 == 0 else "")
                body = {"model": "ideogram-v4", "input": {"prompt": prompt}}
                created = await http.post("/v1/images/generations", json=body)
                ids.append(created.json()["data"]["taskId"])

            async def in_flight() -> bool:
                seen = {t["status"] for t in await statuses(ids)}
                return {"pending", "processing"} <= seen

            await wait_for(in_flight, within=30)
            process.send_signal(signal.SIGKILL)
            await process.wait()

        async with serve_process(settings):
            await wait_for(lambda: responds(http), within=30)

            async def all_final() -> list[dict[str, Any]] | None:
                tasks = await statuses(ids)
                return tasks if all(t["status"] in ("completed", "failed") for t in tasks) else None

            tasks = await wait_for(all_final, within=90)
            for task in tasks:
                if task["status"] == "completed":
                    assert (await http.get(task["output"]["urls"][0])).status_code == 200

    failed = {t["id"] for t in tasks if t["status"] == "failed"}
    assert failed == {ids[n] for n in range(0, 16, 4)}
    entries = await ledger_by_task(settings, account.id)
    assert all(entries[(task_id, "charge")] == 1 for task_id in ids)
    assert {task_id for task_id, kind in entries if kind == "refund"} == failed
    assert all(count == 1 for count in entries.values())
    services = build_services(settings)
    try:
        async with services.db.sessions() as session:
            balance = await billing.balance(session, account.id)
            assert balance == await billing.ledger_sum(session, account.id)
    finally:
        await services.close()
    assert balance == 10_000 - 28 * (16 - len(failed))


async def test_a_callback_retry_planned_before_sigkill_fires_after_restart(
    settings: Settings,
) -> None:
    account = await provision(settings, credits=100)
    base = f"http://{settings.host}:{settings.port}"
    policy = {"callback_allow_private": "true", "callback_retry_delays": "0,3,600"}
    async with (
        running_receiver(lambda n: 503 if n == 1 else 200) as receiver,
        httpx.AsyncClient(base_url=base, headers=account.headers, timeout=10) as http,
    ):

        async def log() -> dict[str, Any]:
            data: dict[str, Any] = (await http.get(f"/v1/tasks/{task_id}/callbacks")).json()["data"]
            return data

        async with serve_process(settings, simulator_delay="0", **policy) as process:
            await wait_for(lambda: responds(http), within=30)
            body = {"model": "ideogram-v4", "callback_url": receiver.url, "input": {"prompt": "x"}}
            task_id = (await http.post("/v1/images/generations", json=body)).json()["data"][
                "taskId"
            ]

            async def first_attempt_recorded() -> bool:
                return len((await log())["attempts"]) == 1

            await wait_for(first_attempt_recorded, within=30)
            process.send_signal(signal.SIGKILL)  # the second attempt is due 3 s after the first
            await process.wait()

        async with serve_process(settings, simulator_delay="0", **policy):
            await wait_for(lambda: responds(http), within=30)
            await receiver.count(2, within=30)

            async def delivered() -> dict[str, Any] | None:
                data = await log()
                return data if data["status"] == "delivered" else None

            final = await wait_for(delivered, within=30)
    first, second = receiver.received
    assert second.at - first.at >= 3
    assert len(receiver.received) == 2
    assert [a["status_code"] for a in final["attempts"]] == [503, 200]
    assert first.headers["webhook-id"] == second.headers["webhook-id"]


async def test_a_callback_in_flight_at_sigkill_is_attempted_again(settings: Settings) -> None:
    account = await provision(settings, credits=100)
    base = f"http://{settings.host}:{settings.port}"
    policy = {"callback_allow_private": "true", "simulator_delay": "0"}
    async with (
        running_receiver(lambda n: HANG if n == 1 else 200) as receiver,
        httpx.AsyncClient(base_url=base, headers=account.headers, timeout=10) as http,
    ):
        async with serve_process(settings, **policy) as process:
            await wait_for(lambda: responds(http), within=30)
            body = {"model": "ideogram-v4", "callback_url": receiver.url, "input": {"prompt": "x"}}
            task_id = (await http.post("/v1/images/generations", json=body)).json()["data"][
                "taskId"
            ]
            await receiver.count(1, within=30)  # the receiver holds the first attempt open
            process.send_signal(signal.SIGKILL)
            await process.wait()

        async with serve_process(settings, **policy):
            await receiver.count(2, within=30)

            async def delivered() -> dict[str, Any] | None:
                response = await http.get(f"/v1/tasks/{task_id}/callbacks")
                data: dict[str, Any] = response.json()["data"]
                return data if data["status"] == "delivered" else None

            final = await wait_for(delivered, within=30)
    assert [(a["number"], a["status_code"]) for a in final["attempts"]] == [(1, 200)]
    first, second = receiver.received
    assert first.headers["webhook-id"] == second.headers["webhook-id"]  # receivers dedupe on it
    assert first.body == second.body

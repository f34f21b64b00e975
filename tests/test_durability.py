"""SIGKILL the server while tasks are pending and processing: after a restart, nothing is lost."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from harness import Account, wait_for
from sqlalchemy import select

from imagegate.billing import service as billing
from imagegate.config import Settings
from imagegate.db.migrate import upgrade
from imagegate.db.models import LedgerEntry
from imagegate.keys.service import create_key
from imagegate.services import build_services


async def provision(settings: Settings, credits: int) -> Account:
    upgrade(settings.resolved_database_url)
    services = build_services(settings)
    try:
        async with services.db.transaction() as session:
            account = await billing.create_account(session, "durable", credits, 0.0)
            key, plaintext = await create_key(session, services.hasher, account.id, "", 0.0)
        return Account(id=account.id, key=plaintext, key_id=key.id)
    finally:
        await services.db.dispose()


@asynccontextmanager
async def serve_process(settings: Settings) -> AsyncIterator[asyncio.subprocess.Process]:
    env = {
        **os.environ,
        "IMAGEGATE_DATA_DIR": str(settings.data_dir),
        "IMAGEGATE_DATABASE_URL": settings.resolved_database_url,
        "IMAGEGATE_SIMULATOR_DELAY": "1.5",
        "IMAGEGATE_WORKER_CONCURRENCY": "4",
        "IMAGEGATE_WORKER_POLL_INTERVAL": "0.1",
        "IMAGEGATE_JOB_STALL_SECONDS": "2",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "imagegate", "serve", "--port", str(settings.port),
        env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()


async def ledger_by_task(settings: Settings, account_id: str) -> Counter[tuple[str, str]]:
    services = build_services(settings)
    try:
        async with services.db.sessions() as session:
            rows = await session.execute(
                select(LedgerEntry.task_id, LedgerEntry.kind).where(
                    LedgerEntry.account_id == account_id, LedgerEntry.task_id.is_not(None)
                )
            )
            return Counter((str(task_id), kind) for task_id, kind in rows)
    finally:
        await services.db.dispose()


async def test_sigkill_with_tasks_in_flight_loses_nothing(settings: Settings) -> None:
    account = await provision(settings, credits=10_000)
    base = f"http://{settings.host}:{settings.port}"
    async with httpx.AsyncClient(base_url=base, headers=account.headers, timeout=10) as http:

        async def statuses(ids: list[str]) -> list[dict[str, Any]]:
            return [(await http.get(f"/v1/tasks/{i}")).json() for i in ids]

        async with serve_process(settings) as process:
            await wait_for(lambda: _responds(http), within=30)
            prompts = [f"poster {n}" + (" [simulate:upstream_error]" if n % 4 == 0 else "") for n in range(16)]  # fmt: skip
            ids = []
            for prompt in prompts:
                body = {"model": "ideogram-v4", "input": {"prompt": prompt}}
                ids.append((await http.post("/v1/images/generations", json=body)).json()["data"]["taskId"])  # fmt: skip

            async def in_flight() -> bool:
                seen = {t["status"] for t in await statuses(ids)}
                return {"pending", "processing"} <= seen

            await wait_for(in_flight, within=30)
            process.send_signal(signal.SIGKILL)
            await process.wait()

        async with serve_process(settings):
            await wait_for(lambda: _responds(http), within=30)

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
        await services.db.dispose()
    assert balance == 10_000 - 28 * (16 - len(failed))


async def _responds(http: httpx.AsyncClient) -> bool:
    try:
        return (await http.get("/v1/credits")).status_code == 200
    except httpx.TransportError:
        return False

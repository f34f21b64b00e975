"""Real imagegate processes for tests that kill them: provisioning, spawning, reading the ledger."""

from __future__ import annotations

import asyncio
import os
import sys
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from functools import partial
from typing import IO, Any

import httpx
from sqlalchemy import select

from harness import Account, free_port, wait_for
from imagegate.billing import service as billing
from imagegate.config import Settings
from imagegate.db.migrate import upgrade
from imagegate.db.models import Callback, LedgerEntry, Task
from imagegate.keys.policy import PolicyChange
from imagegate.keys.service import create_key
from imagegate.services import build_services


async def provision(
    settings: Settings, credits: int, policy: PolicyChange | None = None
) -> Account:
    upgrade(settings.resolved_database_url)
    services = build_services(settings)
    try:
        async with services.db.transaction() as session:
            account = await billing.create_account(session, "durable", credits, 0.0)
            key, plaintext = await create_key(session, services.hasher, account.id, "", 0.0, policy)
        return Account(id=account.id, key=plaintext, key_id=key.id)
    finally:
        await services.close()


def _log_file(settings: Settings, name: str) -> IO[bytes]:
    """A fresh log file beside the test's data dir (pytest keeps the last runs' temp dirs)."""
    logs = settings.data_dir.parent / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    return open(logs / f"{name}-{len(list(logs.iterdir()))}.log", "wb")  # noqa: SIM115


@asynccontextmanager
async def imagegate_process(
    settings: Settings, *args: str, environ: dict[str, str] | None = None, **extra: str
) -> AsyncIterator[asyncio.subprocess.Process]:
    """`imagegate ARGS` in a process of its own on the test's database and data dir; extra
    keyword arguments become IMAGEGATE_* settings, ``environ`` other variables. Killed on exit
    if still running."""
    env = {
        **os.environ,
        "IMAGEGATE_DATA_DIR": str(settings.data_dir),
        "IMAGEGATE_DATABASE_URL": settings.resolved_database_url,
        "IMAGEGATE_SIMULATOR_DELAY": "1.5",
        "IMAGEGATE_WORKER_CONCURRENCY": "4",
        "IMAGEGATE_WORKER_POLL_INTERVAL": "0.1",
        "IMAGEGATE_JOB_STALL_SECONDS": "2",
        "IMAGEGATE_SHUTDOWN_GRACE": "5",
        # Tests poll hard; they are not about the default per-key rate limit.
        "IMAGEGATE_RATE_LIMIT_PER_MINUTE": str(settings.rate_limit_per_minute),
        **{f"IMAGEGATE_{name.upper()}": value for name, value in extra.items()},
        **(environ or {}),
    }
    log = _log_file(settings, args[0])
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "imagegate", *args,
        env=env, stdout=log, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()
        log.close()


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
        await services.close()


def serve_process(settings: Settings, **extra: str) -> Any:
    return imagegate_process(settings, "serve", "--port", str(settings.port), **extra)


async def responds(http: httpx.AsyncClient) -> bool:
    """Whether an imagegate process answers yet (its /healthz)."""
    try:
        return (await http.get("/healthz")).status_code == 200
    except httpx.TransportError:
        return False


async def api_clients(
    stack: AsyncExitStack, settings: Settings, count: int = 2, **env: str
) -> list[httpx.AsyncClient]:
    """``count`` `imagegate serve --no-worker` processes on the test's database (``env`` as
    IMAGEGATE_* settings), each with a client, once they all answer."""
    ports = [free_port() for _ in range(count)]
    for port in ports:
        await stack.enter_async_context(
            imagegate_process(settings, "serve", "--no-worker", "--port", str(port), **env)
        )
    clients = [
        await stack.enter_async_context(
            httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{port}",
                timeout=60,
                limits=httpx.Limits(max_connections=200, max_keepalive_connections=200),
            )
        )
        for port in ports
    ]
    for client in clients:
        await wait_for(partial(responds, client), within=60)
    return clients


async def database_view(
    settings: Settings, account_id: str
) -> tuple[list[Task], dict[str, str], int, int]:
    """What the database holds for the account: its tasks, every callback's status by task,
    the balance and the ledger's sum."""
    services = build_services(settings)
    try:
        async with services.db.sessions() as session:
            tasks = list(await session.scalars(select(Task).where(Task.account_id == account_id)))
            callbacks = dict(
                (await session.execute(select(Callback.task_id, Callback.status))).all()
            )
            balance = await billing.balance(session, account_id)
            ledger = await billing.ledger_sum(session, account_id)
        return tasks, callbacks, balance, ledger
    finally:
        await services.close()

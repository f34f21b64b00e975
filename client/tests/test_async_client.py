"""AsyncClient against a real imagegate server running in the test's own event loop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from harness import Server, running_server
from imagegate.catalog.service import set_active
from imagegate.config import Settings
from imagegate.db.sql import SessionTx
from imagegate_client import (
    PRICES,
    AsyncClient,
    AuthenticationError,
    InvalidRequestError,
    TaskFailedError,
    TaskNotFoundError,
    WaitTimeoutError,
)
from sdk_support import HeldProvider


@pytest.fixture
async def client(server: Server) -> AsyncIterator[AsyncClient]:
    account = await server.account(1000)
    async with AsyncClient(base_url=server.base_url, api_key=account.key) as sdk:
        yield sdk


async def test_generate_and_download(client: AsyncClient, tmp_path: Path) -> None:
    task = await client.generate('A sign that says "OPEN"', size="3:4", output_format="png")
    assert task.status == "completed"
    path = await client.download(task, tmp_path / "sign.png")
    assert path.read_bytes().startswith(b"\x89PNG")
    assert (await client.credits()).credits == 1000 - PRICES["BALANCED"]


async def test_create_get_wait_and_the_secret(client: AsyncClient) -> None:
    task_id = await client.create("a cat", rendering_speed="TURBO")
    assert (await client.get(task_id)).id == task_id
    task = await client.wait(task_id, timeout=30)
    assert task.status == "completed"
    assert task.urls
    assert (await client.webhook_secret()).startswith("whsec_")
    with pytest.raises(TaskNotFoundError):
        await client.get("not-a-task")


async def test_a_failed_task(client: AsyncClient) -> None:
    with pytest.raises(TaskFailedError) as failed:
        await client.generate("a poster [simulate:upstream_error]")
    assert failed.value.code == "upstream_error"
    assert (await client.credits()).credits == 1000


async def test_wait_times_out_then_resumes(settings: Settings) -> None:
    provider = HeldProvider()
    async with running_server(settings, {"ideogram-v4": provider}) as server:
        account = await server.account()
        async with AsyncClient(base_url=server.base_url, api_key=account.key) as client:
            task_id = await client.create("a held poster")
            with pytest.raises(WaitTimeoutError) as timed_out:
                await client.wait(task_id, timeout=0.3)
            assert timed_out.value.task_id == task_id
            assert timed_out.value.task is not None
            assert timed_out.value.task.status == "processing"
            provider.release()
            assert (await client.wait(task_id, timeout=30)).status == "completed"
            # Concurrent waits share nothing: several tasks at once.
            ids = [await client.create(f"poster {n}") for n in range(3)]
            done = await asyncio.gather(*(client.wait(i, timeout=30) for i in ids))
            assert [task.status for task in done] == ["completed"] * 3


async def test_events_cancel_tasks_and_usage(settings: Settings) -> None:
    provider = HeldProvider()
    async with running_server(settings, {"ideogram-v4": provider}) as server:
        account = await server.account()
        async with AsyncClient(base_url=server.base_url, api_key=account.key) as client:
            followed, cancelled = await client.create("a held poster"), await client.create("b")
            events = client.events(followed, timeout=30)
            first = await anext(events)
            assert first.status in ("pending", "processing")
            task = await client.cancel(cancelled)
            assert task.error is not None
            assert task.error.code == "cancelled"
            with pytest.raises(InvalidRequestError):
                await client.cancel(cancelled)
            provider.release()
            states = [first, *[task async for task in events]]
            assert states[-1].status == "completed"
            listed = [task.id async for task in client.tasks(page_size=1)]
            assert listed == [cancelled, followed]
            usage = await client.usage(group_by="speed")
            [row] = usage.rows
            assert (row.group, row.tasks_created, row.tasks_failed) == ("BALANCED", 2, 1)
            assert usage.total.credits_net == PRICES["BALANCED"]


async def test_models(server: Server, client: AsyncClient) -> None:
    [model] = await client.models()
    assert (model.name, model.title) == ("ideogram-v4", "Ideogram V4")
    assert {speed: model.prices[speed] for speed in model.rendering_speeds} == PRICES
    assert [(size.size, size.width, size.height) for size in model.sizes][-1] == (
        "16:9",
        1280,
        720,
    )
    async with server.services.db.transaction() as session:
        await set_active(SessionTx(session), "ideogram-v4", False, 0.0)
    assert await client.models() == []
    async with AsyncClient(base_url=server.base_url, api_key="sk-nope") as stranger:
        with pytest.raises(AuthenticationError):
            await stranger.models()

"""Hanging receivers hold only their own callbacks: tasks and other callbacks go on."""

from __future__ import annotations

import asyncio

from harness import running_server, wait_for
from imagegate.config import Settings
from receiver import HANG, running_receiver


async def test_200_hanging_receivers_do_not_slow_other_tasks_or_callbacks(
    settings: Settings,
) -> None:
    allowed = settings.model_copy(update={"callback_allow_private": True})
    timeout = allowed.callback_timeout  # 10 s: what a hung receiver costs each attempt
    async with (
        running_server(allowed) as server,
        running_receiver(lambda n: HANG) as hanging,
        running_receiver() as healthy,
    ):
        account = await server.account(credits=28 * 300)

        async def create(prompt: str, url: str | None) -> str:
            body = {"model": "ideogram-v4", "callback_url": url, "input": {"prompt": prompt}}
            r = await server.http.post("/v1/images/generations", json=body, headers=account.headers)
            assert r.status_code == 200, r.text
            task_id: str = r.json()["data"]["taskId"]
            return task_id

        await asyncio.gather(*[create(f"slow {n}", hanging.url) for n in range(200)])
        await hanging.count(200, within=60)  # every one of them is now held open

        others = [await create(f"other {n}", healthy.url if n % 2 else None) for n in range(20)]

        async def all_completed() -> bool:
            tasks = [await server.task(account, task_id) for task_id in others]
            return all(task["status"] == "completed" for task in tasks)

        # Well inside one callback timeout: nothing here waited for the hung receivers.
        await wait_for(all_completed, within=timeout * 0.8)
        await healthy.count(10, within=timeout * 0.8)
        assert len(hanging.received) == 200

"""Following a task without a polling loop (Prefer: wait, ?wait=, server-sent events) and
cancelling it: what an API user sees, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
from typing import Any

import psycopg
import pytest

from harness import BACKEND, Account, HeldProvider, Server, held_server, running_server, wait_for
from imagegate.config import Settings
from imagegate.db.pg_hot import conninfo
from imagegate.providers.base import GeneratedImage, GenerationRequest
from imagegate.tasks import store
from imagegate.tasks.watch import TaskWatch
from receiver import running_receiver
from upstream_fakes import FakeReplicate, calls_at_least, running, server_for, upstream_settings

PRICE = 28  # BALANCED


async def post(
    server: Server, account: Account, headers: dict[str, str] | None = None, **body: Any
) -> Any:
    return await server.http.post(
        "/v1/images/generations",
        json={"model": "ideogram-v4", "input": {"prompt": "a lighthouse"}, **body},
        headers={**account.headers, **(headers or {})},
    )


async def created(server: Server, account: Account, **body: Any) -> str:
    response = await post(server, account, **body)
    assert response.status_code == 200, response.text
    task_id: str = response.json()["data"]["taskId"]
    return task_id


async def cancel(server: Server, account: Account, task_id: str) -> Any:
    return await server.http.post(f"/v1/tasks/{task_id}/cancel", headers=account.headers)


def status_of(server: Server, task_id: str) -> Any:
    async def read() -> str | None:
        found = await server.services.db.read(lambda tx: store.statuses(tx, [task_id]))
        return found.get(task_id)

    return read


# --- Prefer: wait and ?wait= -------------------------------------------------------------------


async def test_prefer_wait_answers_with_the_completed_task_in_one_request(server: Server) -> None:
    account = await server.account(credits=100)
    response = await post(server, account, {"Prefer": "wait=30"})
    assert response.status_code == 200, response.text
    assert response.headers["preference-applied"] == "wait=30"
    body = response.json()
    assert (body["code"], body["msg"]) == (200, "success")
    task = body["data"]["task"]
    assert task["status"] == "completed"
    assert body["data"]["taskId"] == task["id"]
    assert task == await server.task(account, task["id"])  # the task exactly as GET shows it


async def test_prefer_wait_answers_with_the_task_as_it_is_when_the_wait_ends(
    settings: Settings,
) -> None:
    held = HeldProvider()
    async with held_server(settings, held) as server:
        account = await server.account(credits=100)
        response = await post(server, account, {"Prefer": "respond-async, wait=1"})
        assert response.status_code == 200, response.text
        task = response.json()["data"]["task"]
        assert task["status"] in ("pending", "processing")
        assert set(task) == {"id", "status", "model", "created_at"}  # no nulls for the rest
        assert response.headers["preference-applied"] == "wait=1"


@pytest.mark.parametrize("prefer", ["wait=0", "wait=61", "wait=soon", "wait=1.5"])
async def test_a_wait_outside_1_to_60_seconds_is_refused(server: Server, prefer: str) -> None:
    account = await server.account(credits=100)
    response = await post(server, account, {"Prefer": prefer})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"
    assert "Prefer" in response.json()["error"]["message"]
    assert await server.ledger(account) == (100, 100)  # refused before anything was charged
    task_id = await created(server, account)
    polled = await server.http.get(f"/v1/tasks/{task_id}?wait=61", headers=account.headers)
    assert polled.status_code == 400
    assert "'wait'" in polled.json()["error"]["message"]


async def test_a_long_poll_answers_within_100_ms_of_completion(settings: Settings) -> None:
    held = HeldProvider()
    async with held_server(settings, held) as server:
        account = await server.account(credits=100)
        task_id = await created(server, account)
        await wait_for(lambda: _started(held))
        polling = asyncio.ensure_future(
            server.http.get(f"/v1/tasks/{task_id}?wait=30", headers=account.headers)
        )
        await wait_for(lambda: _waiting(server))  # the long-poll is parked

        loop = asyncio.get_running_loop()
        held.release.set()
        # The moment of completion, as a client polling every 10 ms would first see it.
        await wait_for(_is(status_of(server, task_id), "completed"), interval=0.01)
        completed_seen = loop.time()
        response = await polling
        answered = loop.time()

        assert response.status_code == 200, response.text
        assert response.json()["status"] == "completed"
        assert answered - completed_seen < 0.1


@pytest.mark.skipif(BACKEND != "postgres", reason="the database's own NOTIFY (PostgreSQL)")
async def test_a_status_changed_by_any_statement_answers_a_long_poll(settings: Settings) -> None:
    """An operator's own UPDATE (no imagegate code runs) wakes the waiters too: the database
    announces every change of a task's status (migration 0013)."""
    held = HeldProvider()
    async with held_server(settings, held) as server:
        server.services.watch._sweep_seconds = 3600  # no safety sweep: only a notice wakes it
        account = await server.account(credits=100)
        task_id = await created(server, account)
        await wait_for(lambda: _started(held))
        loop = asyncio.get_running_loop()
        polling = asyncio.ensure_future(
            server.http.get(f"/v1/tasks/{task_id}?wait=30", headers=account.headers)
        )
        await wait_for(lambda: _waiting(server))
        changed = loop.time()
        async with await psycopg.AsyncConnection.connect(
            conninfo(settings.resolved_database_url), autocommit=True
        ) as conn:
            await conn.execute(
                "UPDATE tasks SET status = 'failed', error_code = 'internal_error',"
                " error_message = 'Stopped by the operator' WHERE id = %s",
                (task_id,),
            )
        response = await polling
        assert response.json()["status"] == "failed"
        assert response.json()["error"]["message"] == "Stopped by the operator"
        assert loop.time() - changed < 10  # woken, not answered at the wait's end (30 s)


async def test_a_long_poll_of_a_running_task_answers_with_its_state_after_the_wait(
    settings: Settings,
) -> None:
    held = HeldProvider()
    async with held_server(settings, held) as server:
        account = await server.account(credits=100)
        task_id = await created(server, account)
        await wait_for(lambda: _started(held))
        loop = asyncio.get_running_loop()
        began = loop.time()
        response = await server.http.get(f"/v1/tasks/{task_id}?wait=1", headers=account.headers)
        assert response.status_code == 200
        assert response.json()["status"] == "processing"
        assert loop.time() - began >= 1.0


async def test_the_sweep_reads_a_thousand_waiters_tasks_in_five_statements(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Waiters are woken by notices; only the safety sweep reads, one statement for up to 200
    watched tasks, every sweep period, whatever the number of waiters beyond that."""
    account = await server.account(credits=100)
    task_id = await server.run(account)
    task_id = task_id["id"]
    queries: list[int] = []
    statuses = store.statuses

    async def counted(tx: Any, task_ids: list[str]) -> dict[str, str]:
        queries.append(len(task_ids))
        return await statuses(tx, task_ids)

    monkeypatch.setattr(store, "statuses", counted)
    watch = TaskWatch(server.services.db, sweep_seconds=0.05)
    ids = [task_id] + [f"missing-{n}" for n in range(999)]
    try:
        async with contextlib.AsyncExitStack() as stack:
            changes = [await stack.enter_async_context(watch.watching(id_)) for id_ in ids]
            for change in changes:
                change.seen("processing")
            changes[0].seen("unknown")  # a status it never has: the sweep wakes this one
            await wait_for(lambda: _at_least(queries, 6 * math.ceil(len(ids) / 200)))
            assert set(queries) == {200}  # full batches: no statement per waiter
            assert changes[0].event.is_set()  # completed, not the "unknown" status it last saw
    finally:
        await watch.close()


# --- the live status stream --------------------------------------------------------------------


async def test_the_event_stream_shows_each_status_in_order_and_ends(settings: Settings) -> None:
    held = HeldProvider()
    async with held_server(settings, held) as server:
        await server.stop_workers()
        account = await server.account(credits=100)
        task_id = await created(server, account)
        url = f"/v1/tasks/{task_id}/events"
        async with server.http.stream("GET", url, headers=account.headers) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            events = _events(response.aiter_lines())
            assert (await anext(events))["status"] == "pending"
            await server.services.start_workers()
            assert (await anext(events))["status"] == "processing"
            held.release.set()
            final = await anext(events)
            assert final["status"] == "completed"
            assert final == await server.task(account, task_id)
            assert [event async for event in events] == []  # the stream ended


async def test_the_event_stream_of_a_final_task_is_one_event(server: Server) -> None:
    account = await server.account(credits=100)
    task = await server.run(account)
    response = await server.http.get(f"/v1/tasks/{task['id']}/events", headers=account.headers)
    assert response.status_code == 200
    assert response.text == f"event: status\ndata: {json.dumps(task, separators=(',', ':'))}\n\n"


async def test_another_accounts_task_has_no_stream(server: Server) -> None:
    owner, other = await server.account(), await server.account()
    task = await server.run(owner)
    response = await server.http.get(f"/v1/tasks/{task['id']}/events", headers=other.headers)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "task_not_found"


# --- cancel ------------------------------------------------------------------------------------


async def test_cancel_during_processing_refunds_once_calls_back_once_and_stops_the_provider(
    settings: Settings,
) -> None:
    held = HeldProvider()
    lenient = settings.model_copy(update={"callback_allow_private": True})
    async with running_receiver() as receiver, held_server(lenient, held) as server:
        account = await server.account(credits=100)
        task_id = await created(server, account, callback_url=receiver.url)
        await wait_for(lambda: _started(held))

        response = await cancel(server, account, task_id)

        assert response.status_code == 200, response.text
        task = response.json()
        assert task["status"] == "failed"
        assert task["error"]["code"] == "cancelled"
        assert task == await server.task(account, task_id)
        assert await server.ledger(account) == (100, 100)
        await wait_for(lambda: _cancelled(held))  # the provider's work was aborted
        [callback] = await receiver.count(1)
        assert json.loads(callback.body) == task
        assert callback.headers["x-event"] == "task.failed"
        await _all_jobs_done(server)
        again = await cancel(server, account, task_id)
        assert again.status_code == 400
        assert again.json()["error"]["code"] == "invalid_request"
        assert await server.ledger(account) == (100, 100)
        assert len(receiver.received) == 1
        assert await server.task(account, task_id) == task


async def test_a_result_that_arrives_after_the_cancel_changes_nothing(settings: Settings) -> None:
    """A provider that ignores the abort and delivers its images later: they are discarded."""
    lenient = settings.model_copy(update={"callback_allow_private": True})
    stubborn = StubbornProvider()
    async with (
        running_receiver() as receiver,
        running_server(lenient, providers={"ideogram-v4": stubborn}) as server,
    ):
        try:
            account = await server.account(credits=100)
            task_id = await created(server, account, callback_url=receiver.url)
            await wait_for(lambda: _started(stubborn))
            cancelled = (await cancel(server, account, task_id)).json()
            await wait_for(lambda: _cancelled(stubborn))  # told to stop, and carries on

            stubborn.release.set()
            await wait_for(lambda: _finished(stubborn))
            await _all_jobs_done(server)

            assert await server.task(account, task_id) == cancelled
            assert cancelled["error"]["code"] == "cancelled"
            assert await server.ledger(account) == (100, 100)
            [callback] = await receiver.count(1)
            assert json.loads(callback.body) == cancelled
            assert len(receiver.received) == 1
        finally:
            stubborn.release.set()


async def test_cancel_aborts_a_replicate_prediction(settings: Settings) -> None:
    async with running(FakeReplicate(["stuck"])) as fake:
        configured = upstream_settings(settings, replicate=fake, upstream_deadline=300)
        async with server_for(configured, fake) as server:
            account = await server.account(credits=100)
            task_id = await created(server, account)
            await wait_for(lambda: calls_at_least(fake, 2))  # created, then polled

            response = await cancel(server, account, task_id)

            assert response.status_code == 200
            assert response.json()["error"]["code"] == "cancelled"
            await wait_for(lambda: _replicate_canceled(fake))
            assert await server.ledger(account) == (100, 100)


async def test_cancel_of_a_pending_task_refunds_it_and_it_never_runs(settings: Settings) -> None:
    held = HeldProvider()
    async with held_server(settings, held) as server:
        await server.stop_workers()
        account = await server.account(credits=100)
        task_id = await created(server, account)
        assert await server.ledger(account) == (100 - PRICE, 100 - PRICE)

        response = await cancel(server, account, task_id)

        assert (response.status_code, response.json()["status"]) == (200, "failed")
        await server.services.start_workers()
        await _all_jobs_done(server)
        assert held.started == 0
        assert await server.ledger(account) == (100, 100)


async def test_cancel_refuses_final_unknown_and_other_accounts_tasks(server: Server) -> None:
    owner, other = await server.account(credits=100), await server.account(credits=100)
    task = await server.run(owner)

    final = await cancel(server, owner, task["id"])
    assert final.status_code == 400
    assert final.json()["error"]["code"] == "invalid_request"
    assert "completed" in final.json()["error"]["message"]
    for account, task_id in ((other, task["id"]), (owner, "task_unknown")):
        response = await cancel(server, account, task_id)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "task_not_found"
    assert await server.task(owner, task["id"]) == task
    assert await server.ledger(owner) == (100 - PRICE, 100 - PRICE)


# --- helpers -----------------------------------------------------------------------------------


class StubbornProvider(HeldProvider):
    """The held simulator, except that it ignores being cancelled: it still answers, with its
    images, once released."""

    def __init__(self) -> None:
        super().__init__()
        self.finished = False

    async def generate(self, request: GenerationRequest) -> list[GeneratedImage]:
        self.started += 1
        while not self.release.is_set():
            try:
                await self.release.wait()
            except asyncio.CancelledError:
                self.cancelled += 1
        images = await self.simulator.generate(request)
        self.finished = True
        return images


async def _events(lines: Any) -> Any:
    """The ``status`` events' tasks of a server-sent event stream (comments skipped)."""
    kind = ""
    async for line in lines:
        if line.startswith("event: "):
            kind = line.removeprefix("event: ")
        elif line.startswith("data: ") and kind == "status":
            yield json.loads(line.removeprefix("data: "))


def _is(read: Any, wanted: str) -> Any:
    async def probe() -> bool:
        return bool(await read() == wanted)

    return probe


async def _started(held: HeldProvider) -> bool:
    return held.started >= 1


async def _cancelled(held: HeldProvider) -> bool:
    return held.cancelled >= 1


async def _finished(stubborn: StubbornProvider) -> bool:
    return stubborn.finished


async def _waiting(server: Server) -> bool:
    return server.services.watch.waiting() >= 1


async def _at_least(items: list[int], n: int) -> bool:
    return len(items) >= n


async def _replicate_canceled(fake: FakeReplicate) -> bool:
    return any(prediction.canceled for prediction in fake.predictions.values())


async def _all_jobs_done(server: Server) -> None:
    async def settled() -> bool:
        return not [job for job in await server.jobs() if job.status in ("todo", "doing")]

    await wait_for(settled)

"""Idempotency-Key on POST /v1/images/generations: a retried create gets the first one's task
and pays once, whatever runs beside it."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from sqlalchemy import text

from harness import Account, Server
from imagegate.billing import service as billing
from imagegate.jobs.admin import retention
from imagegate.services import cleanups
from imagegate.tasks.idempotency import KEPT_SECONDS

BODY: dict[str, Any] = {"model": "ideogram-v4", "input": {"prompt": "a lighthouse at dusk"}}
PRICE = 28  # BALANCED


async def create(
    server: Server, account: Account, key: str, body: dict[str, Any] = BODY
) -> httpx.Response:
    headers = {**account.headers, "Idempotency-Key": key}
    return await server.http.post("/v1/images/generations", json=body, headers=headers)


async def listed(server: Server, account: Account) -> list[str]:
    response = await server.http.get("/v1/tasks?limit=100", headers=account.headers)
    assert response.status_code == 200, response.text
    return [task["id"] for task in response.json()["data"]["tasks"]]


async def test_twenty_concurrent_creates_with_one_key_make_one_task_charged_once(
    server: Server,
) -> None:
    account = await server.account(credits=1000)
    answers = await asyncio.gather(*(create(server, account, "order-1234") for _ in range(20)))
    assert [answer.status_code for answer in answers] == [200] * 20, answers[0].text
    task_ids = {answer.json()["data"]["taskId"] for answer in answers}
    assert len(task_ids) == 1
    replayed = [answer.headers.get("idempotent-replayed") for answer in answers]
    assert sorted(replayed, key=str) == [None] + ["true"] * 19
    assert await listed(server, account) == list(task_ids)
    assert await server.ledger(account) == (1000 - PRICE, 1000 - PRICE)
    # And later, once the task has run: still the same task, still one charge.
    await server.wait_final(account, task_ids.pop())
    again = await create(server, account, "order-1234")
    assert again.json() == answers[0].json()
    assert again.headers["idempotent-replayed"] == "true"
    assert await server.ledger(account) == (1000 - PRICE, 1000 - PRICE)


async def test_the_same_key_with_another_body_is_refused_naming_the_header(
    server: Server,
) -> None:
    account = await server.account(credits=1000)
    first = await create(server, account, "k-1")
    assert first.status_code == 200
    other = {"model": "ideogram-v4", "input": {"prompt": "a different picture"}}
    refused = await create(server, account, "k-1", other)
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert error["code"] == "invalid_request"
    assert "Idempotency-Key" in error["message"]
    # The same body spelled differently (spacing, key order) is the same request.
    spelled = b'{"input": {"prompt": "a lighthouse at dusk"},  "model": "ideogram-v4"}'
    headers = {**account.headers, "Idempotency-Key": "k-1", "Content-Type": "application/json"}
    same = await server.http.post("/v1/images/generations", content=spelled, headers=headers)
    assert (same.status_code, same.json()) == (200, first.json())
    assert await server.ledger(account) == (1000 - PRICE, 1000 - PRICE)


async def test_a_refused_create_keeps_nothing_so_the_key_works_after_a_top_up(
    server: Server,
) -> None:
    account = await server.account(credits=10)
    poor = await create(server, account, "after-top-up")
    assert poor.status_code == 402
    async with server.services.db.transaction() as session:
        await billing.top_up(session, account.id, 100, server.clock.now())
    created = await create(server, account, "after-top-up")
    assert created.status_code == 200, created.text
    assert "idempotent-replayed" not in created.headers
    assert await server.ledger(account) == (110 - PRICE, 110 - PRICE)


async def test_keys_belong_to_their_account_and_expire_after_a_day(server: Server) -> None:
    alice, bob = await server.account(), await server.account()
    first = (await create(server, alice, "shared")).json()["data"]["taskId"]
    theirs = (await create(server, bob, "shared")).json()["data"]["taskId"]
    assert theirs != first
    server.clock.advance(KEPT_SECONDS + 1)
    later = await create(server, alice, "shared")
    assert later.status_code == 200
    assert later.json()["data"]["taskId"] != first
    assert "idempotent-replayed" not in later.headers


async def test_expired_keys_are_deleted_by_the_hourly_retention(server: Server) -> None:
    account = await server.account()
    await create(server, account, "old")
    server.clock.advance(KEPT_SECONDS + 1)
    await create(server, account, "new")
    async with server.services.db.transaction() as session:
        await retention(session, 7, server.clock.now(), cleanups(server.services))
    async with server.services.db.sessions() as session:
        keys = (await session.execute(text("SELECT key FROM idempotency_keys"))).scalars()
        assert list(keys) == ["new"]


async def test_keys_that_cannot_be_keys_are_refused(server: Server) -> None:
    account = await server.account()
    bad_keys: list[str | bytes] = ["", "x" * 256, "caf\u00e9".encode(), "tab\there"]
    for bad in bad_keys:
        headers: dict[str, str | bytes] = {**account.headers, "Idempotency-Key": bad}
        response = await server.http.post("/v1/images/generations", json=BODY, headers=headers)
        assert response.status_code == 400, bad
        assert "Idempotency-Key" in response.json()["error"]["message"]
    assert await server.ledger(account) == (1000, 1000)
    assert (await create(server, account, "x" * 255)).status_code == 200

"""Charges, refunds and the ledger: exact, atomic, never negative."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from harness import Server
from imagegate.billing import service as billing
from imagegate.db.models import LedgerEntry, Task
from imagegate.tasks import service as tasks


async def test_insufficient_credits_is_402_and_writes_nothing(server: Server) -> None:
    account = await server.account(credits=27)
    response = await server.create(account, rendering_speed="BALANCED")
    assert response.status_code == 402
    assert response.json() == {
        "error": {
            "code": "insufficient_credits",
            "message": "Your credit balance is too low. Please top up.",
            "type": "billing_error",
        }
    }
    async with server.services.db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Task)) == 0
    assert await server.ledger(account) == (27, 27)
    assert (await server.create(account, rendering_speed="TURBO")).status_code == 200
    assert await server.ledger(account) == (11, 11)


async def test_prices_per_rendering_speed(server: Server) -> None:
    account = await server.account(credits=1000)
    for speed, price in [("TURBO", 16), ("BALANCED", 28), ("QUALITY", 44)]:
        before = (await server.ledger(account))[0]
        for size in ["1:1", "16:9"]:  # sizes and formats do not change the price
            assert (
                await server.create(account, rendering_speed=speed, size=size)
            ).status_code == 200
        assert (await server.ledger(account))[0] == before - 2 * price


async def test_concurrent_creates_never_overspend(server: Server) -> None:
    account = await server.account(credits=7 * 16)
    responses = await asyncio.gather(
        *[server.create(account, rendering_speed="TURBO") for _ in range(40)]
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 7 + [402] * 33
    assert await server.ledger(account) == (0, 0)
    async with server.services.db.sessions() as session:
        charges = await session.scalar(
            select(func.count()).where(
                LedgerEntry.account_id == account.id, LedgerEntry.kind == "charge"
            )
        )
        task_count = await session.scalar(select(func.count()).where(Task.account_id == account.id))
    assert (charges, task_count) == (7, 7)


async def test_mixed_concurrent_load_keeps_balance_equal_to_ledger(server: Server) -> None:
    account = await server.account(credits=500)
    prompts = ["ok", "x [simulate:upstream_error]"] * 15
    responses = await asyncio.gather(*[server.create(account, prompt=p) for p in prompts])
    accepted = [r.json()["data"]["taskId"] for r in responses if r.status_code == 200]
    assert len(accepted) >= 500 // 28  # refunds during the burst may make room for more
    finals = [await server.wait_final(account, task_id) for task_id in accepted]
    completed = sum(task["status"] == "completed" for task in finals)
    balance, ledger = await server.ledger(account)
    assert balance == ledger == 500 - 28 * completed


async def test_a_failed_task_is_refunded_exactly_once(server: Server) -> None:
    account = await server.account(credits=100)
    task_id = (await server.create(account, prompt="[simulate:upstream_error]")).json()["data"][
        "taskId"
    ]
    await server.wait_final(account, task_id)
    now = server.clock.now()
    async with server.services.db.transaction() as session:  # a duplicate failure is a no-op
        assert await tasks.fail(session, task_id, "upstream_error", "again", now) is None
    with pytest.raises(IntegrityError):  # and a second refund is refused by the unique index
        async with server.services.db.transaction() as session:
            await billing.refund(session, task_id, now)
    async with server.services.db.sessions() as session:
        kinds = list(
            await session.scalars(select(LedgerEntry.kind).where(LedgerEntry.task_id == task_id))
        )
    assert sorted(kinds) == ["charge", "refund"]
    assert await server.ledger(account) == (100, 100)

"""Issue 14: 200 concurrent creates across two API processes on PostgreSQL + Redis, against an
hourly spend limit and a balance; exact to the credit, and every ledger sums to its balance.

Why the accounts look the way they do: when two keys of one account race for one balance and
only one of them has a limit, which key wins how much depends on the order the requests are
served in, so the count of 402s against 429s cannot be known in advance. The accounts here are
sized so that every count is fixed by the rules, whatever the order:

- ``shared`` holds 80 tasks' worth plus 15 credits. Its ``capped`` key may spend 40 tasks' worth
  an hour and sends 100 creates; its ``open`` key has no limit and sends 40. Each create comes
  in while fewer than 80 have been charged, so the balance always covers it: ``capped`` gets
  exactly 40 (then 60 spend-limit 429s), ``open`` gets all 40, and 15 credits are left. If the
  hourly limit let one create too many through, ``open`` would get a 402.
- ``poor`` holds 30 tasks' worth plus 15 credits and sends 60 creates with a key that has no
  limit: exactly 30 are accepted, 30 get 402, and 15 credits are left.

No worker runs (``serve --no-worker``), so no task fails and nothing is refunded while we count.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

import httpx
import psycopg
import pytest

from harness import BACKEND, REDIS_URL
from imagegate.billing import service as billing
from imagegate.catalog import IDEOGRAM_V4
from imagegate.config import Settings
from imagegate.keys.policy import PolicyChange
from imagegate.keys.service import create_key, key_spend
from imagegate.services import build_services
from processes import api_clients

pytestmark = pytest.mark.skipif(
    BACKEND != "postgres",
    reason="scale-out mode is PostgreSQL + Redis: the postgres pass of ./scripts/test runs this",
)

SPEED = "TURBO"
PRICE = IDEOGRAM_V4.price(SPEED)
CHANGE = PRICE - 1  # left over on each account: too little for one more task
CAP_TASKS, OPEN_TASKS, POOR_TASKS = 40, 40, 30
HOURLY_LIMIT = CAP_TASKS * PRICE
SHARED_CREDITS = (CAP_TASKS + OPEN_TASKS) * PRICE + CHANGE
POOR_CREDITS = POOR_TASKS * PRICE + CHANGE
CREATES = {"capped": 100, "open": 40, "poor": 60}  # 200 in all

INSUFFICIENT = {
    "error": {
        "code": "insufficient_credits",
        "message": "Your credit balance is too low. Please top up.",
        "type": "billing_error",
    }
}


@dataclass
class Key:
    name: str
    account_id: str
    id: str
    secret: str
    responses: list[httpx.Response] = field(default_factory=list)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secret}"}

    def outcomes(self) -> Counter[tuple[int, str]]:
        """(status, error code) of each response; "ok" for a 200."""
        return Counter(
            (r.status_code, "ok" if r.status_code == 200 else r.json()["error"]["code"])
            for r in self.responses
        )

    def task_ids(self) -> set[str]:
        return {r.json()["data"]["taskId"] for r in self.responses if r.status_code == 200}


async def provision(settings: Settings, name: str, credits: int, **keys: str | None) -> list[Key]:
    """An account opened with ``credits`` and one key per keyword: its name, and its hourly
    spend limit in credits (None: no limit), as an operator makes them."""
    services = build_services(settings)  # on a copy of the migrated template (conftest.py)
    now = time.time()
    try:
        async with services.db.transaction() as session:
            account = await billing.create_account(session, name, credits, now)
            made = [
                await create_key(
                    session, services.hasher, account.id, key_name, now,
                    None if hourly is None else PolicyChange(hourly_limit=hourly),
                )
                for key_name, hourly in keys.items()
            ]  # fmt: skip
        return [
            Key(k, account.id, row.id, secret) for k, (row, secret) in zip(keys, made, strict=True)
        ]
    finally:
        await services.close()


async def spent_last_hour(settings: Settings, key_ids: list[str]) -> list[int]:
    """Each key's spend in the rolling hour, as `imagegate admin key show` reports it."""
    services = build_services(settings)
    try:
        async with services.db.sessions() as session:
            return [(await key_spend(session, key_id, time.time())).last_hour for key_id in key_ids]
    finally:
        await services.close()


@dataclass
class Books:
    """An account as the database holds it, read with plain SQL."""

    credits: int
    ledger_sum: int
    kinds: Counter[str]
    charges: dict[str, list[tuple[str, int]]]  # key id -> [(task id, amount)]
    tasks: dict[str, tuple[str, int, str]]  # task id -> (key id, price, status)


async def books(settings: Settings, account_id: str) -> Books:
    url = settings.resolved_database_url.replace("postgresql+psycopg://", "postgresql://", 1)
    async with await psycopg.AsyncConnection.connect(url) as conn:

        async def rows(sql: str) -> list[tuple[Any, ...]]:
            return await (await conn.execute(sql, (account_id,))).fetchall()

        [(credits,)] = await rows("SELECT credits FROM accounts WHERE id = %s")
        [(total,)] = await rows(
            "SELECT coalesce(sum(amount), 0) FROM ledger_entries WHERE account_id = %s"
        )
        entries = await rows(
            "SELECT kind, key_id, task_id, amount FROM ledger_entries WHERE account_id = %s"
        )
        tasks = await rows("SELECT id, key_id, price, status FROM tasks WHERE account_id = %s")
    charges: dict[str, list[tuple[str, int]]] = {}
    for kind, key_id, task_id, amount in entries:
        if kind == "charge":
            charges.setdefault(key_id, []).append((task_id, amount))
    return Books(
        credits=int(credits),
        ledger_sum=int(total),
        kinds=Counter(kind for kind, *_ in entries),
        charges=charges,
        tasks={task_id: (key_id, price, status) for task_id, key_id, price, status in tasks},
    )


async def test_200_creates_on_two_apis_are_exact_to_the_credit(settings: Settings) -> None:
    capped, open_ = await provision(
        settings, "shared", SHARED_CREDITS, capped=str(HOURLY_LIMIT), open=None
    )
    (poor_key,) = await provision(settings, "poor", POOR_CREDITS, poor=None)
    shared, poor = capped.account_id, poor_key.account_id
    keys = {"capped": capped, "open": open_, "poor": poor_key}

    # Rate limits are 100,000 a minute per key (the settings fixture), shared through Redis.
    env = {"redis_url": REDIS_URL, "database_pool_size": "8", "database_pool_overflow": "8"}
    async with AsyncExitStack() as stack:
        clients = await api_clients(stack, settings, **env)

        body = {"model": "ideogram-v4", "input": {"prompt": "race", "rendering_speed": SPEED}}

        async def create(key: Key, api: int) -> None:
            response = await clients[api].post(
                "/v1/images/generations", json=body, headers=key.headers
            )
            key.responses.append(response)

        # Each key's creates are split evenly over the two processes, and the keys interleaved.
        plan = [(keys[name], n % 2) for name, count in CREATES.items() for n in range(count)]
        random.Random(14).shuffle(plan)
        assert len(plan) == 200
        await asyncio.wait_for(asyncio.gather(*[create(k, api) for k, api in plan]), 120)

        # Exactly as many accepted and refused, per key, as the limits and balances allow.
        ok, spend, credit = (
            (200, "ok"),
            (429, "spend_limit_exceeded"),
            (402, "insufficient_credits"),
        )
        assert capped.outcomes() == {ok: CAP_TASKS, spend: CREATES["capped"] - CAP_TASKS}
        assert open_.outcomes() == {ok: OPEN_TASKS}
        assert poor_key.outcomes() == {ok: POOR_TASKS, credit: CREATES["poor"] - POOR_TASKS}
        everything = sum((key.outcomes() for key in keys.values()), Counter[tuple[int, str]]())
        assert everything == {ok: 110, spend: 60, credit: 30}

        # What the callers saw: the reference's envelopes, one task id per accepted create.
        accepted = [r.json() for k in keys.values() for r in k.responses if r.status_code == 200]
        assert all(a["code"] == 200 and a["msg"] == "success" for a in accepted)
        assert len({a["data"]["taskId"] for a in accepted}) == 110
        for response in poor_key.responses:
            if response.status_code == 402:
                assert response.json() == INSUFFICIENT
        spent_all = (
            f"this key may spend {HOURLY_LIMIT} credits per rolling hour "
            f"and has spent {HOURLY_LIMIT};"
        )
        for response in capped.responses:
            if response.status_code == 429:
                error = response.json()["error"]
                assert (error["code"], error["type"]) == ("spend_limit_exceeded", "billing_error")
                assert error["message"].startswith("Hourly spend limit reached: ")
                assert spent_all in error["message"], error["message"]

        # The balance, as each key reads it from each process: the opening balance less exactly
        # the accepted creates.
        expected_balance = {
            "capped": SHARED_CREDITS - (CAP_TASKS + OPEN_TASKS) * PRICE,
            "open": SHARED_CREDITS - (CAP_TASKS + OPEN_TASKS) * PRICE,
            "poor": POOR_CREDITS - POOR_TASKS * PRICE,
        }
        assert set(expected_balance.values()) == {CHANGE}
        for name, key in keys.items():
            for client in clients:
                response = await client.get("/v1/credits", headers=key.headers)
                assert response.status_code == 200, response.text
                assert response.json()["data"]["credits"] == expected_balance[name], name

    # Each key's spend in the rolling hour (what `imagegate admin key show` prints): exactly its
    # accepted creates, and for the capped key exactly its limit, never more.
    spent = await spent_last_hour(settings, [key.id for key in keys.values()])
    assert spent == [CAP_TASKS * PRICE, OPEN_TASKS * PRICE, POOR_TASKS * PRICE]
    assert spent[0] == HOURLY_LIMIT

    # The books, read with SQL: one charge of the price per accepted create, on the key that
    # made it, nothing else charged or refunded, and the balance equals the ledger's sum.
    for account_id, account_keys, balance in [
        (shared, [capped, open_], expected_balance["capped"]),
        (poor, [poor_key], expected_balance["poor"]),
    ]:
        ledger = await books(settings, account_id)
        assert ledger.credits == ledger.ledger_sum == balance
        charged = sum(len(key.task_ids()) for key in account_keys)
        assert ledger.kinds == {"top_up": 1, "charge": charged}
        assert set(ledger.charges) == {key.id for key in account_keys}
        for key in account_keys:
            charges = ledger.charges[key.id]
            assert sorted(task_id for task_id, _ in charges) == sorted(key.task_ids())
            assert {amount for _, amount in charges} == {-PRICE}
        assert ledger.tasks == {
            task_id: (key.id, PRICE, "pending")
            for key in account_keys
            for task_id in key.task_ids()
        }

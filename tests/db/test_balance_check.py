"""A balance is never negative, and not only because the code says so: the database refuses it
(accounts.credits >= 0, migration 0007), whatever statement tries, on either backend."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from alembic import command
from sqlalchemy import CheckConstraint, insert, inspect, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from imagegate.db.migrate import alembic_config, upgrade
from imagegate.db.models import Account

CONSTRAINT = "ck_accounts_credits_non_negative"


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """A plain engine on a database migrated to head (SQLite file or PostgreSQL copy)."""
    await asyncio.to_thread(upgrade, database_url)
    engine = create_async_engine(database_url)
    yield engine
    await engine.dispose()


async def add_account(engine: AsyncEngine, account_id: str, credits: int) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            insert(Account).values(
                id=account_id, name=account_id, credits=credits, banned=False, created_at=0.0
            )
        )


async def credits(engine: AsyncEngine, account_id: str) -> int:
    async with engine.connect() as conn:
        value = await conn.scalar(select(Account.credits).where(Account.id == account_id))
    assert value is not None
    return int(value)


async def test_an_update_below_zero_is_refused_and_changes_nothing(engine: AsyncEngine) -> None:
    await add_account(engine, "acct", 10)

    for change in (
        update(Account).where(Account.id == "acct").values(credits=Account.credits - 11),
        update(Account).where(Account.id == "acct").values(credits=-1),
    ):
        with pytest.raises(IntegrityError, match=CONSTRAINT):
            async with engine.begin() as conn:
                await conn.execute(change)
        assert await credits(engine, "acct") == 10

    async with engine.begin() as conn:  # down to exactly zero is a balance like any other
        await conn.execute(
            update(Account).where(Account.id == "acct").values(credits=Account.credits - 10)
        )
    assert await credits(engine, "acct") == 0


async def test_a_new_account_with_a_negative_balance_is_refused(engine: AsyncEngine) -> None:
    with pytest.raises(IntegrityError, match=CONSTRAINT):
        await add_account(engine, "owing", -5)

    async with engine.connect() as conn:
        assert await conn.scalar(select(Account.id).where(Account.id == "owing")) is None


async def test_the_model_declares_the_check_the_migration_made(engine: AsyncEngine) -> None:
    [declared] = [
        c for c in Account.metadata.tables["accounts"].constraints if isinstance(c, CheckConstraint)
    ]
    assert (declared.name, str(declared.sqltext)) == (CONSTRAINT, "credits >= 0")

    async with engine.connect() as conn:
        checks = await conn.run_sync(lambda c: inspect(c).get_check_constraints("accounts"))
    assert [check["name"] for check in checks] == [CONSTRAINT]


async def test_the_migration_goes_down_and_refuses_to_come_up_over_a_negative_balance(
    engine: AsyncEngine, database_url: str
) -> None:
    await add_account(engine, "acct", 3)
    await engine.dispose()  # SQLite: no connection of ours holds the table being rebuilt
    config = alembic_config(database_url)

    await asyncio.to_thread(command.downgrade, config, "0006")
    async with engine.begin() as conn:  # without the check, nothing stops it
        await conn.execute(update(Account).where(Account.id == "acct").values(credits=-2))
    await engine.dispose()

    with pytest.raises(RuntimeError, match="negative balance.*acct"):
        await asyncio.to_thread(upgrade, database_url)

    async with engine.begin() as conn:
        await conn.execute(update(Account).where(Account.id == "acct").values(credits=0))
    await engine.dispose()
    await asyncio.to_thread(upgrade, database_url)
    with pytest.raises(IntegrityError, match=CONSTRAINT):
        async with engine.begin() as conn:
            await conn.execute(update(Account).where(Account.id == "acct").values(credits=-1))
    assert await credits(engine, "acct") == 0

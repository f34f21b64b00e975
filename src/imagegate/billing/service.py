"""The ledger: accounts, top-ups, charges and refunds.

``accounts.credits`` is a cached balance that changes only together with an append-only ledger
entry, in the same transaction, so the balance always equals the sum of the account's entries.
A charge is a conditional UPDATE (``WHERE credits >= price``): concurrent requests can never
overspend, on SQLite (writers serialised) or PostgreSQL (row lock).
"""

from __future__ import annotations

import uuid

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from imagegate.db.models import Account, LedgerEntry
from imagegate.errors import InsufficientCredits


class AccountNotFound(LookupError):
    pass


async def create_account(session: AsyncSession, name: str, credits: int, now: float) -> Account:
    """A new account, with an opening top-up entry when ``credits`` > 0."""
    account = Account(id=str(uuid.uuid4()), name=name, credits=0, banned=False, created_at=now)
    session.add(account)
    await session.flush()
    if credits:
        await top_up(session, account.id, credits, now, note="opening balance")
    return account


async def get_account(session: AsyncSession, account_id: str) -> Account:
    account = await session.get(Account, account_id)
    if account is None:
        raise AccountNotFound(account_id)
    return account


CREDIT_KINDS = ("top_up", "adjustment")  # entries that are not a task's charge or refund


async def top_up(
    session: AsyncSession,
    account_id: str,
    amount: int,
    now: float,
    note: str = "",
    kind: str = "top_up",
) -> int:
    """Add ``amount`` credits (negative to correct, never below zero: ValueError) as a ledger
    entry of ``kind`` (top_up, or adjustment by an operator with its reason in ``note``);
    returns the new balance."""
    assert kind in CREDIT_KINDS
    new_balance = await session.scalar(
        update(Account)
        .where(Account.id == account_id)
        .values(credits=Account.credits + amount)
        .returning(Account.credits)
    )
    if new_balance is None:
        raise AccountNotFound(account_id)
    if new_balance < 0:
        raise ValueError(f"balance would become negative ({new_balance})")
    session.add(
        LedgerEntry(account_id=account_id, kind=kind, amount=amount, note=note, created_at=now)
    )
    await session.flush()
    return int(new_balance)


async def charge(
    session: AsyncSession, account_id: str, key_id: str, task_id: str, price: int, now: float
) -> None:
    """Take ``price`` credits for ``task_id`` or raise InsufficientCredits, atomically."""
    charged = await session.execute(
        update(Account)
        .where(Account.id == account_id, Account.credits >= price)
        .values(credits=Account.credits - price)
    )
    if charged.rowcount != 1:  # type: ignore[attr-defined]
        raise InsufficientCredits()
    session.add(
        LedgerEntry(
            account_id=account_id,
            key_id=key_id,
            kind="charge",
            amount=-price,
            task_id=task_id,
            created_at=now,
        )
    )


async def refund(session: AsyncSession, task_id: str, now: float) -> int:
    """Give back what ``task_id`` was charged; the caller guarantees this runs once per task
    (a compare-and-set to ``failed``), and the unique (task_id, kind) index enforces it."""
    entry = await session.scalar(
        select(LedgerEntry).where(LedgerEntry.task_id == task_id, LedgerEntry.kind == "charge")
    )
    if entry is None:
        return 0
    amount = -entry.amount
    await session.execute(
        update(Account)
        .where(Account.id == entry.account_id)
        .values(credits=Account.credits + amount)
    )
    session.add(
        LedgerEntry(
            account_id=entry.account_id,
            key_id=entry.key_id,
            kind="refund",
            amount=amount,
            task_id=task_id,
            created_at=now,
        )
    )
    await session.flush()
    return amount


async def balance(session: AsyncSession, account_id: str) -> int:
    value = await session.scalar(select(Account.credits).where(Account.id == account_id))
    if value is None:
        raise AccountNotFound(account_id)
    return value


async def ledger_sum(session: AsyncSession, account_id: str) -> int:
    """The balance recomputed from the ledger (must equal ``balance``)."""
    total = await session.scalar(
        select(func.coalesce(func.sum(LedgerEntry.amount), 0)).where(
            LedgerEntry.account_id == account_id
        )
    )
    return int(total or 0)


async def spent(
    session: AsyncSession, account_id: str, since: float, until: float | None = None
) -> int:
    """Credits the account spent on tasks in [since, until), net of refunds."""
    query = select(func.coalesce(func.sum(LedgerEntry.amount), 0)).where(
        LedgerEntry.account_id == account_id,
        LedgerEntry.kind.in_(("charge", "refund")),
        LedgerEntry.created_at >= since,
    )
    if until is not None:
        query = query.where(LedgerEntry.created_at < until)
    return -int(await session.scalar(query) or 0)


async def recent_entries(
    session: AsyncSession, account_id: str, limit: int = 20
) -> list[LedgerEntry]:
    rows = await session.scalars(
        select(LedgerEntry)
        .where(LedgerEntry.account_id == account_id)
        .order_by(LedgerEntry.id.desc())
        .limit(limit)
    )
    return list(rows)


async def set_banned(session: AsyncSession, account_id: str, banned: bool) -> Account:
    account = await get_account(session, account_id)
    account.banned = banned
    await session.flush()
    return account

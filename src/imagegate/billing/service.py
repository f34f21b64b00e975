"""The ledger: accounts, top-ups, charges and refunds.

``accounts.credits`` is a cached balance that changes only together with an append-only ledger
entry, in the same transaction, so the balance always equals the sum of the account's entries.
A charge is a conditional UPDATE (``WHERE credits >= price``): concurrent requests can never
overspend, on SQLite (writers serialised) or PostgreSQL (row lock).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from itertools import pairwise

from sqlalchemy import and_, case, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from imagegate.billing import alerts, store
from imagegate.db.models import Account, LedgerEntry
from imagegate.db.sql import Tx
from imagegate.errors import InsufficientCredits, InvalidApiKey
from imagegate.jobs.queue import JobQueue
from imagegate.keys import store as keys_store


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
# Where credits come from (receipts): a Stripe Checkout Session, a redemption code, an operator.
SOURCES = ("stripe", "code", "operator")


async def top_up(
    session: AsyncSession,
    account_id: str,
    amount: int,
    now: float,
    note: str = "",
    kind: str = "top_up",
    source: str | None = None,
    reference: str | None = None,
) -> int:
    """Add ``amount`` credits (negative to correct, never below zero: ValueError) as a ledger
    entry of ``kind`` (top_up, or adjustment by an operator with its reason in ``note``);
    returns the new balance. ``source`` and ``reference`` say where the credits came from
    (SOURCES); one (source, reference) credits once: a second raises IntegrityError."""
    assert kind in CREDIT_KINDS
    assert source is None or source in SOURCES
    new_balance = await session.scalar(
        update(Account)
        .where(Account.id == account_id, Account.credits + amount >= 0)
        .values(credits=Account.credits + amount)
        .returning(Account.credits)
    )
    if new_balance is None:
        balance = await session.scalar(select(Account.credits).where(Account.id == account_id))
        if balance is None:
            raise AccountNotFound(account_id)
        raise ValueError(f"balance would become negative ({balance + amount})")
    session.add(
        LedgerEntry(
            account_id=account_id,
            kind=kind,
            amount=amount,
            note=note,
            created_at=now,
            source=source,
            reference=reference,
        )
    )
    await session.flush()
    return int(new_balance)


async def charge(
    tx: Tx,
    account_id: str,
    key_id: str,
    task_id: str,
    price: int,
    now: float,
    *,
    queue: JobQueue,
) -> None:
    """Take ``price`` credits for ``task_id`` or raise InsufficientCredits, atomically; a charge
    that crosses the account's low-balance threshold also tells the account (billing/alerts.py).
    A key disabled or an account banned since authentication is refused (InvalidApiKey)."""
    charged = await store.charge(tx, account_id, key_id, task_id, price, now)
    if charged is None:
        if not await keys_store.still_allowed(tx, key_id):
            raise InvalidApiKey("This API key is no longer active.")
        raise InsufficientCredits()
    balance, threshold, notified = charged
    if threshold is not None and alerts.crossed(balance, price, threshold, bool(notified)):
        await alerts.notify(tx, queue, account_id, balance, threshold, now)


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


@dataclass(frozen=True)
class LedgerRow:
    """A ledger entry with the account's balance right after it."""

    entry: LedgerEntry
    balance_after: int


@dataclass(frozen=True)
class LedgerPage:
    rows: list[LedgerRow]
    older_than: int | None  # the cursor of the next (older) page, None on the last page


async def ledger_page(
    session: AsyncSession, account_id: str, before: int | None, limit: int
) -> LedgerPage:
    """Up to ``limit`` entries of the account, newest first, with ids below ``before`` (keyset
    pagination), each with its running balance: one aggregate query per page, not per row."""
    query = select(LedgerEntry).where(LedgerEntry.account_id == account_id)
    if before is not None:
        query = query.where(LedgerEntry.id < before)
    found = list(await session.scalars(query.order_by(LedgerEntry.id.desc()).limit(limit + 1)))
    entries = found[:limit]
    if not entries:
        return LedgerPage(rows=[], older_than=None)
    # The balance after the newest entry of the page is the sum of every entry up to it.
    after = await _sum_up_to(session, account_id, entries[0].id)
    rows = []
    for entry in entries:
        rows.append(LedgerRow(entry, after))
        after -= entry.amount
    return LedgerPage(rows=rows, older_than=entries[-1].id if len(found) > limit else None)


async def _sum_up_to(session: AsyncSession, account_id: str, entry_id: int) -> int:
    total = await session.scalar(
        select(func.coalesce(func.sum(LedgerEntry.amount), 0)).where(
            LedgerEntry.account_id == account_id, LedgerEntry.id <= entry_id
        )
    )
    return int(total or 0)


async def entries_after(
    session: AsyncSession, account_id: str, after_id: int, limit: int
) -> list[LedgerEntry]:
    """Up to ``limit`` entries of the account with ids above ``after_id``, oldest first: the
    whole ledger in batches (for an export, whose running balance starts from zero)."""
    rows = await session.scalars(
        select(LedgerEntry)
        .where(LedgerEntry.account_id == account_id, LedgerEntry.id > after_id)
        .order_by(LedgerEntry.id)
        .limit(limit)
    )
    return list(rows)


DAY = 86400


@dataclass(frozen=True)
class DaySpend:
    day: date  # a UTC day
    credits: int  # charges net of refunds; negative when refunds of earlier charges outweigh


async def daily_spend(
    session: AsyncSession, account_id: str, now: float, days: int = 30
) -> list[DaySpend]:
    """Credits the account spent on tasks on each of the last ``days`` UTC days (today last),
    net of refunds, in one query. Each day is a conditional sum over its time range, which
    reads the same on SQLite and PostgreSQL (no date functions, no float-to-day casts)."""
    start = (int(now) // DAY - days + 1) * DAY
    edges = [start + i * DAY for i in range(days + 1)]
    created = LedgerEntry.created_at
    sums = [
        func.coalesce(
            func.sum(case((and_(created >= low, created < high), LedgerEntry.amount), else_=0)),
            0,
        )
        for low, high in pairwise(edges)
    ]
    query = select(*sums).where(
        LedgerEntry.account_id == account_id,
        LedgerEntry.kind.in_(("charge", "refund")),
        created >= edges[0],
        created < edges[-1],
    )
    totals = (await session.execute(query)).one()
    return [
        DaySpend(day=datetime.fromtimestamp(low, UTC).date(), credits=-int(total or 0))
        for low, total in zip(edges[:-1], totals, strict=True)
    ]

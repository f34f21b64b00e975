"""Accounts as an operator sees them: search, one account with its people, keys and ledger,
credit adjustments with a reason, and every user. Services take a session and never commit.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from imagegate.billing import service as billing
from imagegate.db.models import Account, ApiKey, LedgerEntry, User
from imagegate.keys.service import list_keys
from imagegate.users import service as users

SEARCH_LIMIT = 50
MAX_REASON = 500


@dataclass(frozen=True)
class AccountRow:
    id: str
    name: str
    credits: int
    banned: bool
    created_at: float
    users: int


@dataclass(frozen=True)
class AccountSearch:
    rows: list[AccountRow]
    more: bool  # more accounts matched than ``rows`` holds


@dataclass(frozen=True)
class AccountDetail:
    account: Account
    users: list[User]
    keys: list[ApiKey]
    ledger: list[LedgerEntry]
    ledger_sum: int


async def search_accounts(
    session: AsyncSession, query: str, limit: int = SEARCH_LIMIT
) -> AccountSearch:
    """Accounts whose name, id or one of whose users' email contains ``query`` (any case),
    newest first; every account when ``query`` is blank. At most ``limit`` rows."""
    users_of = (
        select(func.count())
        .where(User.account_id == Account.id)
        .correlate(Account)
        .scalar_subquery()
    )
    statement = (
        select(Account, users_of).order_by(Account.created_at.desc(), Account.id).limit(limit + 1)
    )
    needle = query.strip().lower()
    if needle:
        by_email = select(User.account_id).where(User.email.contains(needle, autoescape=True))
        statement = statement.where(
            or_(
                func.lower(Account.name).contains(needle, autoescape=True),
                func.lower(Account.id).contains(needle, autoescape=True),
                Account.id.in_(by_email),
            )
        )
    rows = [
        AccountRow(a.id, a.name, a.credits, a.banned, a.created_at, int(n))
        for a, n in await session.execute(statement)
    ]
    return AccountSearch(rows[:limit], len(rows) > limit)


async def account_detail(
    session: AsyncSession, account_id: str, ledger_limit: int = 20
) -> AccountDetail:
    """One account with its users, live keys and latest ledger entries; AccountNotFound."""
    account = await billing.get_account(session, account_id)
    return AccountDetail(
        account=account,
        users=await users.list_users(session, account_id),
        keys=await list_keys(session, account_id),
        ledger=await billing.recent_entries(session, account_id, ledger_limit),
        ledger_sum=await billing.ledger_sum(session, account_id),
    )


def parse_adjustment(amount: str, reason: str) -> tuple[int, str]:
    """An operator's adjustment as typed: a non-zero whole number and a reason; ValueError
    with a sentence for a person otherwise."""
    try:
        credits = int(amount.strip())
    except ValueError:
        raise ValueError("Enter a whole number of credits, such as 250 or -50.") from None
    if credits == 0:
        raise ValueError("Enter a number of credits other than 0.")
    reason = reason.strip()
    if not reason:
        raise ValueError("Give a reason for the adjustment: it is kept in the ledger.")
    if len(reason) > MAX_REASON:
        raise ValueError(f"Keep the reason under {MAX_REASON} characters.")
    return credits, reason


async def adjust_credits(
    session: AsyncSession, account_id: str, amount: int, reason: str, now: float
) -> int:
    """Add (or with a negative ``amount`` take) credits as an ``adjustment`` ledger entry with
    ``reason`` as its note; returns the new balance. A balance never goes below zero: that is
    a ValueError and nothing is written."""
    balance = await billing.balance(session, account_id)
    if balance + amount < 0:
        raise ValueError(
            f"The balance is {balance} credits: taking {-amount} would make it negative. "
            "Nothing was changed."
        )
    try:
        return await billing.top_up(
            session, account_id, amount, now, reason, kind="adjustment", source="operator"
        )
    except ValueError:  # spent meanwhile; the caller's transaction rolls the update back
        raise ValueError(
            f"The balance fell below {-amount} credits meanwhile; nothing was changed."
        ) from None


async def all_users(
    session: AsyncSession, account_id: str | None = None, limit: int = 1000
) -> list[User]:
    """Users, oldest first: of one account (AccountNotFound if unknown), else of all."""
    statement = select(User).order_by(User.created_at, User.email).limit(limit)
    if account_id is not None:
        await billing.get_account(session, account_id)
        statement = statement.where(User.account_id == account_id)
    return list(await session.scalars(statement))

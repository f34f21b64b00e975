"""The SQL of the ledger on the request path: a task's charge."""

from __future__ import annotations

from typing import Any

from imagegate.db.sql import Row, Tx

# Conditional on the balance (never below zero, whatever runs beside it), on the account not
# being banned and on the paying key still being active: the charging write re-checks what
# authentication saw, so a key disabled meanwhile cannot spend.
_CHARGE_WHERE = (
    "UPDATE accounts SET credits = credits - :price"
    " WHERE id = :account_id AND credits >= :price AND NOT banned"
    " AND EXISTS (SELECT 1 FROM api_keys WHERE id = :key_id AND status = 'active')"
)
_CHARGE = f"{_CHARGE_WHERE} RETURNING credits, low_balance_threshold, low_balance_notified"

_ENTRY_COLUMNS = (
    "INSERT INTO ledger_entries (account_id, key_id, kind, amount, task_id, note, created_at)"
)
_ENTRY_VALUES = ":account_id, :key_id, 'charge', :amount, :task_id, '', :created_at"
_ENTRY = f"{_ENTRY_COLUMNS} VALUES ({_ENTRY_VALUES})"

# PostgreSQL: the charge and its entry in one statement, so the account's row stays locked for
# one round trip (then the commit) and not two. SQLite has no writing WITH; its writer is alone.
_CHARGE_WITH_ENTRY = (
    f"WITH charged AS ({_CHARGE}), entry AS ({_ENTRY_COLUMNS} SELECT {_ENTRY_VALUES} FROM charged)"
    " SELECT * FROM charged"
)

# PostgreSQL, a create in one statement (tasks/service.py): the charge and its entry as WITH
# queries, the charge only on an account with no low-balance alert (whose crossing would need
# statements of its own, billing/alerts.py).
_CHARGING = (
    f"charged AS ({_CHARGE_WHERE} AND low_balance_threshold IS NULL RETURNING credits),"
    f" entry AS ({_ENTRY_COLUMNS} SELECT {_ENTRY_VALUES} FROM charged)"
)

_MARK_TOLD = (
    "UPDATE accounts SET low_balance_notified = :told WHERE id = :account_id RETURNING webhook_url"
)


async def charge(
    tx: Tx, account_id: str, key_id: str, task_id: str, price: int, now: float
) -> Row | None:
    """(balance, low_balance_threshold, low_balance_notified) after taking ``price`` and
    writing its ledger entry; None, writing nothing, when the charge is refused."""
    params = {"account_id": account_id, "key_id": key_id, "price": price}
    entry = {**params, "amount": -price, "task_id": task_id, "created_at": now}
    if tx.dialect == "postgresql":
        return await tx.one(_CHARGE_WITH_ENTRY, entry)
    charged = await tx.one(_CHARGE, params)
    if charged is not None:
        await tx.run(_ENTRY, entry)
    return charged


def charging(
    account_id: str, key_id: str, task_id: str, price: int, now: float
) -> tuple[str, str, dict[str, Any]]:
    """PostgreSQL: charge() as WITH queries of a bigger statement, for an account with no
    low-balance threshold (none is charged otherwise): the WITH queries, the one of them that
    has a row when the charge was taken, and their parameters."""
    params = {"account_id": account_id, "key_id": key_id, "price": price}
    entry = {**params, "amount": -price, "task_id": task_id, "created_at": now}
    return _CHARGING, "charged", entry


async def mark_told(tx: Tx, account_id: str) -> str | None:
    """Note that the account was told of its low balance; its webhook URL, if any."""
    row = await tx.one(_MARK_TOLD, {"account_id": account_id, "told": True})
    return None if row is None else row[0]

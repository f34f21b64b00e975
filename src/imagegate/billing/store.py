"""The SQL of the ledger on the request path: a task's charge."""

from __future__ import annotations

from imagegate.db.sql import Row, Tx

# Conditional on the balance (never below zero, whatever runs beside it), on the account not
# being banned and on the paying key still being active: the charging write re-checks what
# authentication saw, so a key disabled meanwhile cannot spend.
_PAYS = "credits >= {amount} AND NOT banned"
_KEY_ACTIVE = "EXISTS (SELECT 1 FROM api_keys WHERE id = {key} AND status = 'active')"
_CHARGE_WHERE = (
    "UPDATE accounts SET credits = credits - :price WHERE id = :account_id"
    f" AND {_PAYS.format(amount=':price')} AND {_KEY_ACTIVE.format(key=':key_id')}"
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

# PostgreSQL, creates in one statement (tasks/service.py's create_tasks_in_one): from the WITH
# query {asked} (a row per create: id, account_id, key_id, price, created_at), the charges of
# each account's creates as one UPDATE, all of them or none, with the conditions above (the key
# of each), on an account with no low-balance alert (whose crossing needs statements of its
# own, billing/alerts.py); and an entry for each. PAID: the creates charged.
PAID = "paid"
_CHARGING_EACH = (
    f"live AS (SELECT * FROM {{asked}} r WHERE {_KEY_ACTIVE.format(key='r.key_id')}),"
    " owed AS (SELECT account_id, SUM(price) AS total FROM live GROUP BY account_id),"
    # Their rows locked first, in one order: two statements that charge the same accounts
    # wait for each other instead of deadlocking (the lock an UPDATE takes, no stronger).
    " held AS MATERIALIZED (SELECT id FROM accounts WHERE id IN (SELECT account_id FROM owed)"
    " ORDER BY id FOR NO KEY UPDATE),"
    " charged AS (UPDATE accounts a SET credits = credits - owed.total FROM owed, held"
    f" WHERE a.id = held.id AND a.id = owed.account_id AND {_PAYS.format(amount='owed.total')}"
    " AND low_balance_threshold IS NULL RETURNING a.id),"
    f" {PAID} AS (SELECT live.* FROM live JOIN charged ON charged.id = live.account_id),"
    f" entries AS ({_ENTRY_COLUMNS} SELECT account_id, key_id, 'charge', -price, id, '',"
    f" created_at FROM {PAID})"
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


def charging_each(asked: str) -> str:
    """PostgreSQL: WITH queries of a bigger statement that charge the creates of ``asked`` (a
    WITH query, see _CHARGING_EACH) that can be charged, and leave those in PAID."""
    return _CHARGING_EACH.format(asked=asked)


async def mark_told(tx: Tx, account_id: str) -> str | None:
    """Note that the account was told of its low balance; its webhook URL, if any."""
    row = await tx.one(_MARK_TOLD, {"account_id": account_id, "told": True})
    return None if row is None else row[0]

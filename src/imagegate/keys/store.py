"""The SQL of keys on the request path: finding the caller by its key's hash."""

from __future__ import annotations

from imagegate.db.sql import Row, Tx

# The caller's key and its account's ban, in the order key_from_row() reads them.
CALLER_COLUMNS = (
    "k.id, k.account_id, k.status, k.expires_at, k.allowed_ips, k.rate_limit, k.hourly_limit,"
    " k.daily_limit, k.total_limit, k.models, a.banned"
)
CALLER_WIDTH = 11


_KEY_AND_ACCOUNT = "api_keys k JOIN accounts a ON a.id = k.account_id"


def caller_query(columns: str = "", join: str = "") -> str:
    """The statement that finds a key by ``:hash`` with its account; ``columns`` and ``join``
    add another aggregate's row to the same round trip (GET /v1/tasks/{id} adds the task)."""
    return (
        f"SELECT {CALLER_COLUMNS}{columns} FROM {_KEY_AND_ACCOUNT}{join} WHERE k.key_hash = :hash"
    )


def callers_query(asked: str, columns: str = "", join: str = "") -> str:
    """PostgreSQL: caller_query() for many callers in one statement (tasks/reads.py), each a row
    of ``asked``, a WITH query with the columns n (its place) and hash: a row for each key
    found, its n first."""
    return (
        f"SELECT {asked}.n, {CALLER_COLUMNS}{columns} FROM {asked}"
        f" JOIN ({_KEY_AND_ACCOUNT}) ON k.key_hash = {asked}.hash{join}"
    )


_CALLER = caller_query()

# PostgreSQL: hold the key's row while its spend is checked and charged (SQLite's writer holds
# the whole database).
_LOCK_KEY = "SELECT id FROM api_keys WHERE id = :key_id FOR UPDATE"

# Whether a key may still spend: active, and its account not banned.
_STILL_ALLOWED = (
    "SELECT k.status = 'active' AND NOT a.banned FROM api_keys k"
    " JOIN accounts a ON a.id = k.account_id WHERE k.id = :key_id"
)


async def find_caller(tx: Tx, key_hash: str) -> Row | None:
    return await tx.one(_CALLER, {"hash": key_hash})


async def lock_key(tx: Tx, key_id: str) -> None:
    """Serialise the key's charges (PostgreSQL; on SQLite the writer already is alone)."""
    if tx.dialect == "postgresql":
        await tx.run(_LOCK_KEY, {"key_id": key_id})


async def still_allowed(tx: Tx, key_id: str) -> bool:
    row = await tx.one(_STILL_ALLOWED, {"key_id": key_id})
    return bool(row and row[0])

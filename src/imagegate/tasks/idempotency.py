"""Idempotent creates: a create sent again with the same ``Idempotency-Key`` (Stripe's header)
answers with the task the first one made, and charges nothing more.

The key's row (account, key, the request's digest, the task) is written first in the
transaction that creates the task and charges for it, so:
- a refused create (402, 429 …) rolls its row back too: the same key works once the cause is gone;
- concurrent creates with one key make one task: on PostgreSQL the others wait on the row's
  unique index until the first commits, on SQLite writes take turns; either way they then find
  the row taken, roll back, and answer with the first's task;
- a key is kept ``KEPT_SECONDS`` (24 h); after that it may be used again, and the hourly job
  retention deletes it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import Headers

from imagegate.db.sql import Tx
from imagegate.errors import InvalidRequest
from imagegate.tasks.schemas import CreateTaskRequest

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
KEPT_SECONDS = 24 * 3600
MAX_CHARS = 255

# Taken, or taken again once expired; no row back when a live one holds the key.
_CLAIM = (
    "INSERT INTO idempotency_keys (account_id, key, request_hash, task_id, created_at)"
    " VALUES (:account_id, :key, :request_hash, :task_id, :now)"
    " ON CONFLICT (account_id, key) DO UPDATE SET request_hash = excluded.request_hash,"
    " task_id = excluded.task_id, created_at = excluded.created_at"
    " WHERE idempotency_keys.created_at < :expired RETURNING task_id"
)
_FIND = (
    "SELECT request_hash, task_id FROM idempotency_keys"
    " WHERE account_id = :account_id AND key = :key AND created_at >= :expired"
)
_DELETE_EXPIRED = "DELETE FROM idempotency_keys WHERE created_at < :expired"


@dataclass(frozen=True)
class IdempotencyKey:
    key: str
    request_hash: str  # the body's digest: the same key with another body is refused


class KeyTaken(Exception):
    """Raised inside a create's transaction whose key a live row holds: it rolls back."""


def requested(headers: Headers, body: CreateTaskRequest) -> IdempotencyKey | None:
    """The request's Idempotency-Key, or None; InvalidRequest for one that cannot be a key."""
    value = headers.get(HEADER)
    if value is None:
        return None
    if not 1 <= len(value) <= MAX_CHARS or not all(" " <= char <= "~" for char in value):
        raise InvalidRequest(
            f"The '{HEADER}' header must be 1 to {MAX_CHARS} printable ASCII characters."
        )
    # The parsed body, so spacing, key order and unknown fields do not make another request.
    digest = hashlib.sha256(body.model_dump_json().encode()).hexdigest()
    return IdempotencyKey(value, digest)


async def claim(tx: Tx, account_id: str, key: IdempotencyKey, task_id: str, now: float) -> None:
    """Take ``key`` for ``task_id`` in the create's transaction; KeyTaken when a live row has it."""
    params = {"account_id": account_id, "key": key.key, "request_hash": key.request_hash,
              "task_id": task_id, "now": now, "expired": now - KEPT_SECONDS}  # fmt: skip
    if await tx.one(_CLAIM, params) is None:
        raise KeyTaken(key.key)


async def replay(tx: Tx, account_id: str, key: IdempotencyKey, now: float) -> str | None:
    """The task a live row of ``key`` made, or None when there is none; InvalidRequest when the
    key was used with another body."""
    params = {"account_id": account_id, "key": key.key, "expired": now - KEPT_SECONDS}
    row = await tx.one(_FIND, params)
    if row is None:
        return None
    if row[0] != key.request_hash:
        raise InvalidRequest(
            f"This '{HEADER}' was already used with a different request body; use a new key"
            " for a different request."
        )
    return str(row[1])


async def delete_expired(session: AsyncSession, now: float) -> None:
    """Retention (run hourly with the jobs' retention): keys older than 24 hours go."""
    await session.execute(text(_DELETE_EXPIRED), {"expired": now - KEPT_SECONDS})

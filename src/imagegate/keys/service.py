"""Issuing, hashing and verifying API keys. Keys are shown once and stored only as HMACs."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from imagegate.db.models import Account, ApiKey
from imagegate.errors import InvalidApiKey

KEY_PREFIX = "sk-"
KEY_STATUSES = ("active", "disabled", "deleted")


class KeyNotFound(LookupError):
    pass


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key and the account that pays."""

    key_id: str
    account_id: str


class KeyHasher:
    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def hash(self, key: str) -> str:
        return hmac.new(self._secret, key.encode(), hashlib.sha256).hexdigest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)  # 43 url-safe characters, 256 bits


async def create_key(
    session: AsyncSession, hasher: KeyHasher, account_id: str, name: str, now: float
) -> tuple[ApiKey, str]:
    """A new active key for ``account_id``; returns the row and the plaintext (shown once)."""
    if await session.get(Account, account_id) is None:
        raise LookupError(f"no account {account_id}")
    plaintext = new_key()
    key = ApiKey(
        id=str(uuid.uuid4()),
        account_id=account_id,
        name=name,
        key_hash=hasher.hash(plaintext),
        prefix=plaintext[:10],
        status="active",
        created_at=now,
    )
    session.add(key)
    await session.flush()
    return key, plaintext


async def set_key_status(session: AsyncSession, key_id: str, status: str) -> ApiKey:
    """Enable, disable or delete a key; a deleted key stays deleted."""
    key = await session.get(ApiKey, key_id)
    if key is None or key.status == "deleted":
        raise KeyNotFound(key_id)
    key.status = status
    await session.flush()
    return key


async def list_keys(session: AsyncSession, account_id: str) -> list[ApiKey]:
    rows = await session.scalars(
        select(ApiKey)
        .where(ApiKey.account_id == account_id, ApiKey.status != "deleted")
        .order_by(ApiKey.created_at)
    )
    return list(rows)


def bearer_token(authorization: str | None) -> str:
    """The key in an ``Authorization: Bearer sk-...`` header, or InvalidApiKey."""
    if not authorization:
        raise InvalidApiKey("Missing API key. Send it as 'Authorization: Bearer sk-...'.")
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise InvalidApiKey("Malformed Authorization header. Use 'Authorization: Bearer sk-...'.")
    if not token.startswith(KEY_PREFIX):
        raise InvalidApiKey("Invalid API key: keys start with 'sk-'.")
    return token


async def authenticate(
    session: AsyncSession, hasher: KeyHasher, authorization: str | None
) -> Principal:
    """The caller behind an Authorization header; unknown, disabled, deleted keys and banned
    accounts are refused alike with InvalidApiKey, checked against the database on every call."""
    token = bearer_token(authorization)
    digest = hasher.hash(token)
    row = (
        await session.execute(
            select(ApiKey.id, ApiKey.key_hash, ApiKey.status, ApiKey.account_id, Account.banned)
            .join(Account, Account.id == ApiKey.account_id)
            .where(ApiKey.key_hash == digest)
        )
    ).first()
    if row is None or not hmac.compare_digest(row.key_hash, digest) or row.status == "deleted":
        raise InvalidApiKey("Invalid API key.")
    if row.status != "active":
        raise InvalidApiKey("This API key is disabled.")
    if row.banned:
        raise InvalidApiKey("This account has been banned.")
    return Principal(key_id=row.id, account_id=row.account_id)

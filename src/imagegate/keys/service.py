"""Issuing, hashing and verifying API keys. Keys are shown once and stored only as HMACs."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from imagegate.db.models import Account, ApiKey
from imagegate.errors import InvalidApiKey
from imagegate.keys.spend import SpendLimits

KEY_PREFIX = "sk-"
KEY_STATUSES = ("active", "disabled", "deleted")


class KeyNotFound(LookupError):
    pass


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key, the account that pays, and the key's access policy."""

    key_id: str
    account_id: str
    allowed_ips: tuple[str, ...] = ()
    rate_limit: int | None = None  # requests per minute; None: the operator's default
    spend: SpendLimits = field(default_factory=SpendLimits)
    models: tuple[str, ...] | None = None  # None: every model


def principal_of(key: ApiKey) -> Principal:
    return Principal(
        key_id=key.id,
        account_id=key.account_id,
        allowed_ips=tuple(key.allowed_ips or ()),
        rate_limit=key.rate_limit,
        spend=SpendLimits(key.hourly_limit, key.daily_limit, key.total_limit),
        models=tuple(key.models) if key.models else None,
    )


class KeyHasher:
    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def hash(self, key: str) -> str:
        return hmac.new(self._secret, key.encode(), hashlib.sha256).hexdigest()

    def derive(self, purpose: str) -> bytes:
        """A key of its own for ``purpose`` (console CSRF tokens, say), from the server secret."""
        return hmac.new(self._secret, f"derive:{purpose}".encode(), hashlib.sha256).digest()


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
        last4=plaintext[-4:],
        status="active",
        created_at=now,
    )
    session.add(key)
    await session.flush()
    return key, plaintext


async def get_live_key(session: AsyncSession, key_id: str) -> ApiKey:
    """A key that has not been deleted, or KeyNotFound."""
    key = await session.get(ApiKey, key_id)
    if key is None or key.status == "deleted":
        raise KeyNotFound(key_id)
    return key


async def set_key_status(session: AsyncSession, key_id: str, status: str) -> ApiKey:
    """Enable, disable or delete a key; a deleted key stays deleted."""
    key = await get_live_key(session, key_id)
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
    session: AsyncSession, hasher: KeyHasher, authorization: str | None, now: float
) -> Principal:
    """The caller behind an Authorization header; unknown, disabled, deleted and expired keys and
    banned accounts are refused with InvalidApiKey, checked against the database on every call."""
    token = bearer_token(authorization)
    digest = hasher.hash(token)
    row = (
        await session.execute(
            select(ApiKey, Account.banned)
            .join(Account, Account.id == ApiKey.account_id)
            .where(ApiKey.key_hash == digest)
        )
    ).first()
    if row is None or not hmac.compare_digest(row[0].key_hash, digest):
        raise InvalidApiKey("Invalid API key.")
    key, banned = row
    if key.status == "deleted":
        raise InvalidApiKey("Invalid API key.")
    if key.status != "active":
        raise InvalidApiKey("This API key is disabled.")
    if banned:
        raise InvalidApiKey("This account has been banned.")
    if key.expires_at is not None and key.expires_at <= now:
        raise InvalidApiKey("This API key has expired.")
    return principal_of(key)

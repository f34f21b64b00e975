"""Issuing, hashing and verifying API keys. Keys are shown once and stored only as HMACs."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import unicodedata
import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from imagegate.catalog import store as catalog_store
from imagegate.db.models import Account, ApiKey
from imagegate.db.sql import Row, SessionTx, from_json
from imagegate.errors import InvalidApiKey
from imagegate.keys import store
from imagegate.keys.policy import PolicyChange, PolicyError
from imagegate.keys.spend import DAY, HOUR, SpendLimits, spent

KEY_PREFIX = "sk-"
KEY_STATUSES = ("active", "disabled", "deleted")
MAX_NAME = 200  # characters, as the column holds


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

    def may_use(self, model: str) -> bool:
        """Whether the key's model allowlist lets it use ``model``."""
        return self.models is None or model in self.models


class KeyHasher:
    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def hash(self, key: str) -> str:
        return hmac.digest(self._secret, key.encode(), "sha256").hex()

    def derive(self, purpose: str) -> bytes:
        """A key of its own for ``purpose`` (console CSRF tokens, say), from the server secret."""
        return hmac.new(self._secret, f"derive:{purpose}".encode(), hashlib.sha256).digest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)  # 43 url-safe characters, 256 bits


def check_name(name: str) -> str:
    """A key's label, or PolicyError (a ValueError) when the column cannot hold it."""
    if len(name) > MAX_NAME:
        raise PolicyError("name", f"name must be at most {MAX_NAME} characters")
    if any(unicodedata.category(char) == "Cc" for char in name):
        raise PolicyError("name", "name must not contain control characters")
    return name


async def create_key(
    session: AsyncSession,
    hasher: KeyHasher,
    account_id: str,
    name: str,
    now: float,
    policy: PolicyChange | None = None,
) -> tuple[ApiKey, str]:
    """A new active key for ``account_id`` with ``policy``; returns the row and the plaintext
    (shown once). A bad name or policy value raises ValueError and nothing is added."""
    if await session.get(Account, account_id) is None:
        raise LookupError(f"no account {account_id}")
    plaintext = new_key()
    key = ApiKey(
        id=str(uuid.uuid4()),
        account_id=account_id,
        name=check_name(name),
        key_hash=hasher.hash(plaintext),
        prefix=plaintext[:10],
        last4=plaintext[-4:],
        status="active",
        created_at=now,
    )
    if policy is not None:
        policy.apply(key, await model_names(session))
    session.add(key)
    await session.flush()
    return key, plaintext


async def model_names(session: AsyncSession) -> list[str]:
    """Every catalogue model's name (a key's model allowlist may name only these)."""
    return [model.name for model in await catalog_store.all_models(SessionTx(session))]


async def get_live_key(session: AsyncSession, key_id: str, account_id: str | None = None) -> ApiKey:
    """A key that has not been deleted (of ``account_id`` when given), or KeyNotFound."""
    # PostgreSQL refuses NUL in text: such an id (from a URL, say) names no key.
    key = None if "\x00" in key_id else await session.get(ApiKey, key_id)
    if key is None or key.status == "deleted":
        raise KeyNotFound(key_id)
    if account_id is not None and key.account_id != account_id:
        raise KeyNotFound(key_id)
    return key


async def get_account_key(session: AsyncSession, account_id: str, key_id: str) -> ApiKey:
    """``account_id``'s key ``key_id``; KeyNotFound when it is deleted or another's."""
    return await get_live_key(session, key_id, account_id)


async def set_key_status(
    session: AsyncSession, key_id: str, status: str, account_id: str | None = None
) -> ApiKey:
    """Enable, disable or delete a key (of ``account_id`` when given); a deleted key stays
    deleted (KeyNotFound)."""
    if status not in KEY_STATUSES:
        raise ValueError(f"status must be one of {', '.join(KEY_STATUSES)}")
    key = await get_live_key(session, key_id, account_id)
    key.status = status
    await session.flush()
    return key


async def update_key(
    session: AsyncSession,
    key_id: str,
    change: PolicyChange,
    name: str | None = None,
    account_id: str | None = None,
) -> ApiKey:
    """Change a live key's policy (and its name when given), of ``account_id`` when given.
    A bad value raises ValueError and changes nothing."""
    key = await get_live_key(session, key_id, account_id)
    new_name = key.name if name is None else check_name(name)
    change.apply(key, await model_names(session))
    key.name = new_name
    await session.flush()
    return key


async def list_keys(session: AsyncSession, account_id: str) -> list[ApiKey]:
    """An account's keys that are not deleted, oldest first."""
    rows = await session.scalars(
        select(ApiKey)
        .where(ApiKey.account_id == account_id, ApiKey.status != "deleted")
        .order_by(ApiKey.created_at, ApiKey.id)
    )
    return list(rows)


@dataclass(frozen=True)
class KeySpend:
    """Credits a key spent, net of refunds."""

    last_hour: int
    last_day: int
    total: int


async def key_spend(session: AsyncSession, key_id: str, now: float) -> KeySpend:
    """What ``key_id`` spent in the rolling hour and day before ``now``, and in total."""
    tx = SessionTx(session)
    return KeySpend(
        last_hour=await spent(tx, key_id, now - HOUR),
        last_day=await spent(tx, key_id, now - DAY),
        total=await spent(tx, key_id, None),
    )


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


def key_hash(hasher: KeyHasher, authorization: str | None) -> str:
    """The stored hash of the key in an Authorization header (keys/store.py finds the caller by
    it), or InvalidApiKey for a missing or malformed header."""
    return hasher.hash(bearer_token(authorization))


def check_caller(row: Row | None, now: float) -> Principal:
    """The Principal of a row of keys/store.py's caller query, or InvalidApiKey."""
    if row is None:
        raise InvalidApiKey("Invalid API key.")
    columns = tuple(row[: store.CALLER_WIDTH])
    (key_id, account_id, status, expires_at, allowed_ips, rate_limit, hourly, daily, total,
     models, banned) = columns  # fmt: skip
    if status == "deleted":
        raise InvalidApiKey("Invalid API key.")
    if status != "active":
        raise InvalidApiKey("This API key is disabled.")
    if banned:
        raise InvalidApiKey("This account has been banned.")
    if expires_at is not None and expires_at <= now:
        raise InvalidApiKey("This API key has expired.")
    principal = _PRINCIPALS.get(columns)
    if principal is None:  # (a row seen lately is checked as above, but parsed once)
        if len(_PRINCIPALS) >= PRINCIPALS_KEPT:
            _PRINCIPALS.clear()
        ips, allowed_models = from_json(allowed_ips), from_json(models)
        principal = _PRINCIPALS[columns] = Principal(
            key_id=key_id,
            account_id=account_id,
            allowed_ips=tuple(ips or ()),
            rate_limit=rate_limit,
            spend=SpendLimits(hourly, daily, total),
            models=tuple(allowed_models) if allowed_models else None,
        )
    return principal


# The Principal of each caller row seen lately, by the row's columns (which hold all it is
# made of): making it cost a request more than the checks above.
_PRINCIPALS: dict[tuple[Any, ...], Principal] = {}
PRINCIPALS_KEPT = 4096

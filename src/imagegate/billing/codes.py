"""Redemption codes: an operator makes a batch of single-use codes, each worth the batch's
credits, and hands them out; a person redeems one on the console's Billing page.

A code reads ``IG-XXXXX-XXXXX-XXXXX-XXXXX-XXXXX-XXXXX``: 30 characters of Crockford's base32
(150 random bits; 130 beyond the four-character hint that operators see). People may type it in
any case, with or without the ``IG`` prefix, spaces and dashes, and O for 0 or I and L for 1.
Only the SHA-256 of its 30 characters is stored (the code's id); the code itself is shown once.

Redeeming is a compare-and-set on the code (``redeemed_at IS NULL``) in the same transaction as
the top-up, whose ledger entry (source ``code``, reference the code's id) is unique too: two
concurrent redemptions of one code credit once. Services take a session and never commit.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Select, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from imagegate.billing import service as billing
from imagegate.db.models import CodeBatch, RedemptionCode

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford's base32: no I, L, O or U
PREFIX = "IG"
GROUPS, GROUP_SIZE = 6, 5
LENGTH = GROUPS * GROUP_SIZE  # 30 characters of 5 bits
HINT_SIZE = 4
MAX_COUNT = 10_000
MAX_CREDITS = 1_000_000_000
MAX_NOTE = 200
MAX_TYPED = 100  # longer input is no code
SEPARATORS = str.maketrans("", "", " \t\r\n-_\u2010\u2011\u2012\u2013\u2014\u2212")
LOOKALIKES = str.maketrans("OIL", "011")
CHUNK = 500  # ids per IN (...) list


class BatchNotFound(LookupError):
    pass


class RedeemRefused(ValueError):
    """A code that credits nothing; its message is the sentence shown to the person."""


class UnknownCode(RedeemRefused):
    def __init__(self) -> None:
        super().__init__("No such code. Check it and try again.")


class UsedCode(RedeemRefused):
    def __init__(self) -> None:
        super().__init__("This code was already used.")


class ExpiredCode(RedeemRefused):
    def __init__(self, expires_at: float) -> None:
        super().__init__(f"This code expired on {day_or_time(expires_at)}.")


def day_or_time(timestamp: float) -> str:
    """2027-01-01 for a midnight (UTC), else 2027-01-01 12:30 UTC."""
    moment = datetime.fromtimestamp(timestamp, UTC)
    if moment.hour == moment.minute == moment.second == 0:
        return moment.strftime("%Y-%m-%d")
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def iso(timestamp: float | None) -> str | None:
    """A time as the admin CLI prints it (and reads it): 2027-01-01T00:00:00Z."""
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# The codes themselves


def new_code() -> str:
    """A fresh code's 30 characters (150 bits from the system's CSPRNG)."""
    return "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))


def display(body: str) -> str:
    """IG-XXXXX-... : the 30 characters in groups of five, as people are given them."""
    groups = [body[i : i + GROUP_SIZE] for i in range(0, LENGTH, GROUP_SIZE)]
    return "-".join([PREFIX, *groups])


def normalise(typed: str) -> str | None:
    """The 30 characters of a code as a person typed it, or None when it cannot be one."""
    if len(typed) > MAX_TYPED:
        return None
    body = typed.translate(SEPARATORS).upper()
    if len(body) == LENGTH + len(PREFIX) and body.startswith(PREFIX):
        body = body[len(PREFIX) :]
    body = body.translate(LOOKALIKES)
    if len(body) != LENGTH or any(char not in ALPHABET for char in body):
        return None
    return body


def code_id(body: str) -> str:
    """The stored id of a code: the SHA-256 (hex) of its 30 characters."""
    return hashlib.sha256(body.encode("ascii")).hexdigest()


def hint_of(body: str) -> str:
    return body[-HINT_SIZE:]


# Batches


@dataclass(frozen=True)
class BatchSpec:
    """A batch as an operator asked for it, checked."""

    credits: int
    count: int
    expires_at: float | None
    note: str


def parse_batch(
    credits: int | str, count: int | str, expires: str, note: str, now: float
) -> BatchSpec:
    """A batch from an operator's input (the CLI's options or the console's form); ValueError
    with a sentence for a person when a value is out of bounds."""
    note = note.strip()
    if len(note) > MAX_NOTE:
        raise ValueError(f"Keep the note under {MAX_NOTE} characters.")
    return BatchSpec(
        credits=_whole(credits, "Credits per code", 1, MAX_CREDITS),
        count=_whole(count, "The number of codes", 1, MAX_COUNT),
        expires_at=_expiry(expires.strip(), now),
        note=note,
    )


def _whole(value: int | str, name: str, low: int, high: int) -> int:
    text = str(value).strip()
    digits = text.isascii() and text.lstrip("-").isdigit() and len(text) <= 20
    number = int(text) if digits else None
    if number is None or not low <= number <= high:
        raise ValueError(f"{name} must be a whole number from {low} to {high}.")
    return number


def _expiry(text: str, now: float) -> float | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"The expiry {text!r} is not an ISO 8601 time, such as 2027-01-01T00:00:00Z."
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if moment.timestamp() <= now:
        raise ValueError("The expiry must be in the future.")
    return moment.timestamp()


@dataclass(frozen=True)
class NewBatch:
    batch: CodeBatch
    codes: list[str]  # as people are given them (IG-...): shown once, never stored


async def create_batch(session: AsyncSession, spec: BatchSpec, now: float) -> NewBatch:
    """Make ``spec.count`` codes worth ``spec.credits`` each; returns them, the only time they
    exist outside the hands they are given to (the database keeps their hashes)."""
    batch = CodeBatch(
        id=str(uuid.uuid4()),
        credits=spec.credits,
        count=spec.count,
        note=spec.note,
        created_at=now,
        expires_at=spec.expires_at,
    )
    session.add(batch)
    await session.flush()
    bodies = [new_code() for _ in range(spec.count)]
    rows = [{"id": code_id(b), "batch_id": batch.id, "hint": hint_of(b)} for b in bodies]
    for start in range(0, len(rows), CHUNK):
        await session.execute(insert(RedemptionCode), rows[start : start + CHUNK])
    return NewBatch(batch, [display(b) for b in bodies])


@dataclass(frozen=True)
class BatchRow:
    id: str
    credits: int
    count: int
    redeemed: int
    note: str
    created_at: float
    expires_at: float | None

    @property
    def label(self) -> str:
        """How a ledger note names the batch: its note, else its id."""
        return self.note or self.id


def _redeemed_counts() -> Select[CodeBatch, int]:
    """Batches, each with the number of its codes redeemed (one correlated count)."""
    redeemed = (
        select(func.count())
        .where(RedemptionCode.batch_id == CodeBatch.id, RedemptionCode.redeemed_at.is_not(None))
        .correlate(CodeBatch)
        .scalar_subquery()
    )
    return select(CodeBatch, redeemed)


def _row(batch: CodeBatch, redeemed: int) -> BatchRow:
    return BatchRow(
        batch.id, batch.credits, batch.count, int(redeemed), batch.note,
        batch.created_at, batch.expires_at,
    )  # fmt: skip


async def list_batches(session: AsyncSession, limit: int | None = None) -> list[BatchRow]:
    """Batches, newest first, each with how many of its codes were redeemed."""
    statement = _redeemed_counts().order_by(CodeBatch.created_at.desc(), CodeBatch.id)
    if limit is not None:
        statement = statement.limit(limit)
    return [_row(batch, n) for batch, n in await session.execute(statement)]


async def get_batch(session: AsyncSession, batch_id: str) -> BatchRow:
    """One batch with its redeemed count; BatchNotFound."""
    found = (await session.execute(_redeemed_counts().where(CodeBatch.id == batch_id))).first()
    if found is None:
        raise BatchNotFound(batch_id)
    return _row(*found)


async def batch_codes(session: AsyncSession, batch_id: str) -> list[RedemptionCode]:
    """The batch's codes by hint (never the codes themselves), with who redeemed them when."""
    rows = await session.scalars(
        select(RedemptionCode)
        .where(RedemptionCode.batch_id == batch_id)
        .order_by(RedemptionCode.hint, RedemptionCode.id)
    )
    return list(rows)


async def check_batch_codes(
    session: AsyncSession, batch_id: str, typed: Sequence[str]
) -> list[str]:
    """The codes of ``typed`` (one each, as people are given them) when every one of them is a
    code of the batch; ValueError otherwise. Lets the console turn the codes it has just shown
    into a file without keeping them anywhere."""
    bodies = [normalise(line) for line in typed]
    if not bodies or len(bodies) > MAX_COUNT or None in bodies:
        raise ValueError("These are not the codes of this batch.")
    ids = list({code_id(b) for b in bodies if b is not None})
    found = sum(
        [
            await _count_in_batch(session, batch_id, ids[i : i + CHUNK])
            for i in range(0, len(ids), CHUNK)
        ]
    )
    if found != len(ids):
        raise ValueError("These are not the codes of this batch.")
    return [display(b) for b in bodies if b is not None]


async def _count_in_batch(session: AsyncSession, batch_id: str, ids: list[str]) -> int:
    found = await session.scalar(
        select(func.count()).where(RedemptionCode.batch_id == batch_id, RedemptionCode.id.in_(ids))
    )
    return int(found or 0)


# Redeeming


@dataclass(frozen=True)
class Redeemed:
    credits: int
    balance: int
    hint: str


async def redeem(session: AsyncSession, account_id: str, typed: str, now: float) -> Redeemed:
    """Credit the account with the code's batch's credits, once: RedeemRefused (UnknownCode,
    UsedCode, ExpiredCode) and nothing credited otherwise. The caller's transaction holds the
    compare-and-set and the ledger entry together."""
    body = normalise(typed)
    if body is None:
        raise UnknownCode()
    found = (
        await session.execute(
            select(RedemptionCode, CodeBatch)
            .join(CodeBatch, CodeBatch.id == RedemptionCode.batch_id)
            .where(RedemptionCode.id == code_id(body))
        )
    ).first()
    if found is None:
        raise UnknownCode()
    code, batch = found
    if code.redeemed_at is not None:
        raise UsedCode()
    if batch.expires_at is not None and now >= batch.expires_at:
        raise ExpiredCode(batch.expires_at)
    await _claim(session, code.id, account_id, now)
    note = f"Redemption code …{code.hint} (batch {batch.note or batch.id})"
    balance = await billing.top_up(
        session, account_id, batch.credits, now, note=note, source="code", reference=code.id
    )
    return Redeemed(credits=batch.credits, balance=balance, hint=code.hint)


async def _claim(session: AsyncSession, id_: str, account_id: str, now: float) -> None:
    """The compare-and-set: only one transaction turns the code from unused to redeemed."""
    claimed = await session.execute(
        update(RedemptionCode)
        .where(RedemptionCode.id == id_, RedemptionCode.redeemed_at.is_(None))
        .values(redeemed_at=now, account_id=account_id)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        raise UsedCode()

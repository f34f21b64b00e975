"""Argon2id password hashes (argon2-cffi's defaults: RFC 9106's low-memory profile), computed in a
thread: a hash takes tens of milliseconds of CPU, which the event loop must not spend."""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_LENGTH, MAX_LENGTH = 10, 1024

_hasher = PasswordHasher()
# Verified when no user has the email given, so a wrong email costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash("imagegate: no such user")


def check_rules(password: str) -> None:
    """ValueError with a message a person can act on, for a password we would not accept."""
    if len(password) < MIN_LENGTH:
        raise ValueError(f"Choose a password of at least {MIN_LENGTH} characters.")
    if len(password) > MAX_LENGTH:
        raise ValueError(f"Choose a password of at most {MAX_LENGTH} characters.")


async def hash_password(password: str) -> str:
    check_rules(password)
    return await asyncio.to_thread(_hasher.hash, password)


async def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches; a missing hash (no such user, none set yet) never does."""

    def verify() -> bool:
        try:
            return _hasher.verify(password_hash or _DUMMY_HASH, password) and bool(password_hash)
        except (VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(verify)

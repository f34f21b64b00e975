"""Users, console sessions and one-time links. Services take a session and never commit.

Session cookies and one-time links carry 256-bit random tokens; only their SHA-256 is stored,
so a database dump opens no session. Ending a session deletes its row: logout ends one, a
password change or a disabled user ends all of the user's.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from dataclasses import dataclass

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from imagegate.billing import service as billing
from imagegate.db.models import Account, ConsoleSession, User, UserToken

ROLES = ("member", "operator")
MAX_SESSION_DAYS = 30.0
DAY = 86400.0
LINK_TTL = 7 * DAY
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")
EMAIL_TAKEN = "An account with this email already exists. Sign in instead."


class UserNotFound(LookupError):
    pass


class LinkUnusable(ValueError):
    pass


@dataclass(frozen=True)
class SignedIn:
    """The person behind a console session, and the account they act for."""

    session_id: str
    user_id: str
    email: str
    role: str
    account_id: str
    account_name: str
    low_balance: bool = False  # below the account's alert threshold: the console shows a banner

    @property
    def is_operator(self) -> bool:
        return self.role == "operator"


def token_id(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def normalize_email(text: str) -> str:
    email = text.strip().lower()
    if not _EMAIL.match(email) or len(email) > 254:
        raise ValueError("Enter an email address such as name@example.com.")
    return email


async def find_by_email(session: AsyncSession, email: str) -> User | None:
    user: User | None = await session.scalar(select(User).where(User.email == email))
    return user


async def get_user(session: AsyncSession, user_id: str) -> User:
    user = await session.get(User, user_id)
    if user is None:
        raise UserNotFound(user_id)
    return user


async def find_user(session: AsyncSession, id_or_email: str) -> User:
    """A user by id or by email (how operators name them at the CLI)."""
    if "@" in id_or_email:
        user = await find_by_email(session, id_or_email.strip().lower())
    else:
        user = await session.get(User, id_or_email)
    if user is None:
        raise UserNotFound(id_or_email)
    return user


async def create_user(
    session: AsyncSession,
    account_id: str,
    email: str,
    role: str,
    now: float,
    password_hash: str | None = None,
) -> User:
    """A new active user of ``account_id``; ValueError for a taken email or unknown role."""
    email = normalize_email(email)
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    await billing.get_account(session, account_id)
    if await find_by_email(session, email) is not None:
        raise ValueError(EMAIL_TAKEN)
    user = User(
        id=str(uuid.uuid4()),
        account_id=account_id,
        email=email,
        password_hash=password_hash,
        role=role,
        status="active",
        created_at=now,
    )
    session.add(user)
    await session.flush()
    return user


async def list_users(session: AsyncSession, account_id: str) -> list[User]:
    rows = await session.scalars(
        select(User).where(User.account_id == account_id).order_by(User.created_at)
    )
    return list(rows)


async def set_password(session: AsyncSession, user_id: str, password_hash: str) -> None:
    """A new password; every session of the user ends, and so does every unused password link
    (one handed out earlier must not set a password after this one)."""
    await get_user(session, user_id)
    await session.execute(
        update(User).where(User.id == user_id).values(password_hash=password_hash)
    )
    await end_sessions(session, user_id)
    await void_password_links(session, user_id)


async def void_password_links(session: AsyncSession, user_id: str) -> None:
    await session.execute(
        delete(UserToken).where(
            UserToken.user_id == user_id,
            UserToken.purpose == "password",
            UserToken.used_at.is_(None),
        )
    )


async def set_status(session: AsyncSession, user_id: str, status: str) -> User:
    """Enable or disable a user; disabling ends every session of theirs."""
    user = await get_user(session, user_id)
    user.status = status
    await session.flush()
    if status != "active":
        await end_sessions(session, user_id)
        await void_password_links(session, user_id)
    return user


# Sessions


async def start_session(session: AsyncSession, user_id: str, now: float) -> str:
    """A new session for ``user_id``; returns the cookie's token (stored only hashed)."""
    token = secrets.token_urlsafe(32)
    session.add(
        ConsoleSession(
            id=token_id(token),
            user_id=user_id,
            created_at=now,
            last_seen_at=now,
            expires_at=now + MAX_SESSION_DAYS * DAY,
        )
    )
    await session.flush()
    return token


async def signed_in(
    session: AsyncSession, token: str, now: float, idle_days: float
) -> tuple[SignedIn, float] | None:
    """The live session behind a cookie token and when it was last seen, or None: unknown,
    expired, idle too long, a disabled user or a banned account."""
    row = (
        await session.execute(
            select(ConsoleSession, User, Account)
            .join(User, User.id == ConsoleSession.user_id)
            .join(Account, Account.id == User.account_id)
            .where(ConsoleSession.id == token_id(token))
        )
    ).first()
    if row is None:
        return None
    record, user, account = row
    if record.expires_at <= now or record.last_seen_at + idle_days * DAY <= now:
        return None
    if user.status != "active" or account.banned:
        return None
    threshold = account.low_balance_threshold
    low = threshold is not None and account.credits < threshold
    who = SignedIn(record.id, user.id, user.email, user.role, account.id, account.name, low)
    return who, record.last_seen_at


async def touch_session(session: AsyncSession, session_id: str, now: float) -> None:
    await session.execute(
        update(ConsoleSession).where(ConsoleSession.id == session_id).values(last_seen_at=now)
    )


async def end_session(session: AsyncSession, session_id: str) -> None:
    await session.execute(delete(ConsoleSession).where(ConsoleSession.id == session_id))


async def end_sessions(session: AsyncSession, user_id: str) -> None:
    await session.execute(delete(ConsoleSession).where(ConsoleSession.user_id == user_id))


# One-time links


def password_link(base_url: str, token: str) -> str:
    """Where a person sets their password with a ``password`` link (console/signin.py)."""
    return f"{base_url}/console/set-password/{token}"


def invite_link(base_url: str, token: str) -> str:
    """Where a person signs up with an ``invite`` link (console/signin.py)."""
    return f"{base_url}/console/signup?invite={token}"


async def reset_password(session: AsyncSession, user_id: str, now: float) -> str:
    """An operator's reset: the old password stops working, every session of the user ends,
    and the returned one-time link token sets a new password."""
    await get_user(session, user_id)
    await session.execute(update(User).where(User.id == user_id).values(password_hash=None))
    await end_sessions(session, user_id)
    await void_password_links(session, user_id)  # only the newest link works
    return await issue_link(session, "password", now, user_id=user_id)


async def invite(
    session: AsyncSession, now: float, account_id: str | None = None, role: str = "member"
) -> str:
    """A one-time sign-up link token: into ``account_id`` (which must exist) as ``role``, or,
    with no account, for a person who gets an account of their own."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if account_id is not None:
        await billing.get_account(session, account_id)
    return await issue_link(session, "invite", now, account_id=account_id, role=role)


async def set_account_banned(session: AsyncSession, account_id: str, banned: bool) -> Account:
    """Ban or unban an account. Its keys are refused from the next request on (the API reads
    the ban), and a ban ends every console session of its users for good."""
    account = await billing.set_banned(session, account_id, banned)
    if banned:
        members = select(User.id).where(User.account_id == account_id)
        await session.execute(delete(ConsoleSession).where(ConsoleSession.user_id.in_(members)))
    return account


async def issue_link(
    session: AsyncSession,
    purpose: str,
    now: float,
    *,
    user_id: str | None = None,
    account_id: str | None = None,
    role: str | None = None,
    ttl: float = LINK_TTL,
) -> str:
    """A one-time link token: ``password`` (set the user's password) or ``invite`` (sign up,
    joining ``account_id`` when given, else with an account of one's own)."""
    token = secrets.token_urlsafe(32)
    session.add(
        UserToken(
            id=token_id(token),
            purpose=purpose,
            user_id=user_id,
            account_id=account_id,
            role=role,
            created_at=now,
            expires_at=now + ttl,
        )
    )
    await session.flush()
    return token


async def peek_link(session: AsyncSession, token: str, purpose: str, now: float) -> UserToken:
    """The unused, unexpired link behind ``token``, or LinkUnusable."""
    link = await session.get(UserToken, token_id(token))
    if link is None or link.purpose != purpose or link.used_at is not None:
        raise LinkUnusable("This link is not valid or was already used. Ask for a new one.")
    if link.expires_at <= now:
        raise LinkUnusable("This link has expired. Ask for a new one.")
    return link


async def use_link(session: AsyncSession, token: str, purpose: str, now: float) -> UserToken:
    """Spend a one-time link: of two concurrent uses, exactly one succeeds."""
    link = await peek_link(session, token, purpose, now)
    used = await session.execute(
        update(UserToken)
        .where(UserToken.id == link.id, UserToken.used_at.is_(None))
        .values(used_at=now)
    )
    if used.rowcount != 1:  # type: ignore[attr-defined]
        raise LinkUnusable("This link was already used. Ask for a new one.")
    return link


async def spend_form_token(session: AsyncSession, token: str, user_id: str, now: float) -> bool:
    """Mark a form's one-time token as sent; False when it was sent before (a reload or a
    double click re-posting a form whose effect must happen once, such as creating a key)."""
    if not token or len(token) > 128:
        return False
    if await session.get(UserToken, token_id(token)) is not None:
        return False
    session.add(
        UserToken(
            id=token_id(token),
            purpose="form",
            user_id=user_id,
            created_at=now,
            expires_at=now,
            used_at=now,
        )
    )
    await session.flush()  # a concurrent sender of the same token fails here (primary key)
    return True


async def sign_up(
    session: AsyncSession,
    email: str,
    password_hash: str,
    now: float,
    credits: int,
    invite: UserToken | None = None,
) -> User:
    """A new member: of the invitation's account, or of a new account of their own (with
    ``credits``, as an opening balance in the ledger)."""
    email = normalize_email(email)
    if invite is not None and invite.account_id is not None:
        account_id = invite.account_id
    else:
        account_id = (await billing.create_account(session, email, credits, now)).id
    role = invite.role if invite is not None and invite.role else "member"
    return await create_user(session, account_id, email, role, now, password_hash)

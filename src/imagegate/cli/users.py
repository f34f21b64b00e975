"""`imagegate admin user ...`: people who sign in to the console.

Passwords never pass through the shell: creating a user or resetting a password prints a
one-time link (valid 7 days) where the person sets it.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from imagegate.billing import accounts
from imagegate.cli.common import AdminContext, JsonFlag, Result, run_action
from imagegate.db.models import User
from imagegate.users import service as users

app = typer.Typer(help="Console users and their sign-in links.", no_args_is_help=True)

UserArg = Annotated[str, typer.Argument(metavar="USER", help="User id or email.")]
Role = Annotated[str, typer.Option("--role", help="member or operator.")]
LINK_DAYS = int(users.LINK_TTL // users.DAY)


def user_json(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "email": user.email,
        "account_id": user.account_id,
        "role": user.role,
        "status": user.status,
        "created_at": int(user.created_at),
    }


async def _password_link(session: AsyncSession, s: AdminContext, user: User) -> str:
    token = await users.issue_link(session, "password", s.clock.now(), user_id=user.id)
    return users.password_link(s.public_url, token)


@app.command("create")
def user_create(
    email: Annotated[
        str, typer.Option("--email", help="The person's email; they sign in with it.")
    ],
    account: Annotated[str, typer.Option("--account", help="Account id the user acts for.")],
    role: Role = "member",
    as_json: JsonFlag = False,
) -> None:
    """Create a user and print a one-time link where they set their password."""

    async def action(session: AsyncSession, s: AdminContext) -> Result:
        user = await users.create_user(session, account, email, role, s.clock.now())
        link = await _password_link(session, s, user)
        line = (
            f"created {user.role} {user.id} ({user.email}) of account {account}; "
            f"set the password within {LINK_DAYS} days at {link}"
        )
        return line, {**user_json(user), "link": link}

    run_action(action, as_json)


@app.command("reset-password")
def user_reset_password(user: UserArg, as_json: JsonFlag = False) -> None:
    """Void the user's password, sign them out everywhere, and print a one-time link to set a
    new one."""

    async def action(session: AsyncSession, s: AdminContext) -> Result:
        found = await users.find_user(session, user)
        token = await users.reset_password(session, found.id, s.clock.now())
        link = users.password_link(s.public_url, token)
        line = (
            f"user {found.id} ({found.email}) signed out everywhere, old password void; "
            f"set a new password within {LINK_DAYS} days at {link}"
        )
        return line, {"id": found.id, "email": found.email, "link": link}

    run_action(action, as_json)


def _set_status(user: str, status: str, as_json: bool) -> None:
    async def action(session: AsyncSession, s: AdminContext) -> Result:
        found = await users.set_status(session, (await users.find_user(session, user)).id, status)
        line = f"user {found.id} ({found.email}) {'enabled' if status == 'active' else status}"
        return line, {"id": found.id, "email": found.email, "status": found.status}

    run_action(action, as_json)


@app.command("disable")
def user_disable(user: UserArg, as_json: JsonFlag = False) -> None:
    """Refuse the user's sign-ins and end every session of theirs."""
    _set_status(user, "disabled", as_json)


@app.command("enable")
def user_enable(user: UserArg, as_json: JsonFlag = False) -> None:
    """Let a disabled user sign in again."""
    _set_status(user, "active", as_json)


@app.command("list")
def user_list(
    account: Annotated[
        str | None, typer.Option("--account", help="Only this account's users.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Users (of one account, or all), oldest first."""

    async def action(session: AsyncSession, s: AdminContext) -> Result:
        rows = [user_json(u) for u in await accounts.all_users(session, account)]
        lines = [
            f"{u['id']} {u['email']} {u['role']} {u['status']} account {u['account_id']}"
            for u in rows
        ]
        return "\n".join(lines) or "no users", {"account_id": account, "users": rows}

    run_action(action, as_json)


@app.command("invite")
def user_invite(
    account: Annotated[
        str | None,
        typer.Option("--account", help="Join this account (default: an account of their own)."),
    ] = None,
    role: Role = "member",
    as_json: JsonFlag = False,
) -> None:
    """Print a one-time sign-up link (works even when sign-up is by invitation only)."""

    async def action(session: AsyncSession, s: AdminContext) -> Result:
        token = await users.invite(session, s.clock.now(), account, role)
        link = users.invite_link(s.public_url, token)
        joins = f"of account {account}" if account else "with an account of their own"
        line = f"invite link for a new {role} {joins}, valid {LINK_DAYS} days, once: {link}"
        return line, {"account_id": account, "role": role, "link": link}

    run_action(action, as_json)

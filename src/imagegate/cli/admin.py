"""`imagegate admin`: accounts and keys, against the same database as a running server.

Each verb prints one human line, or with --json one JSON object (scripts depend on the shape).
Changes take effect on a running server at once: it reads keys and balances on every request.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from imagegate.billing import service as billing
from imagegate.callbacks import service as callbacks
from imagegate.cli.codes import app as code_app
from imagegate.cli.common import AdminContext, JsonFlag, Result, run_action
from imagegate.cli.keys import app as key_app
from imagegate.cli.models import app as model_app
from imagegate.cli.models import plan_app
from imagegate.cli.users import app as user_app
from imagegate.db.models import LedgerEntry
from imagegate.keys import service as keys
from imagegate.keys.policy import key_json
from imagegate.users import service as users

app = typer.Typer(help="Accounts, credits and API keys.", no_args_is_help=True)
account_app = typer.Typer(help="Accounts and credits.", no_args_is_help=True)
app.add_typer(account_app, name="account")
app.add_typer(key_app, name="key")
app.add_typer(user_app, name="user")
app.add_typer(code_app, name="codes")
app.add_typer(model_app, name="model")
app.add_typer(plan_app, name="plan")


def _entry_json(entry: LedgerEntry) -> dict[str, Any]:
    return {
        "kind": entry.kind,
        "amount": entry.amount,
        "task_id": entry.task_id,
        "note": entry.note,
        "created_at": int(entry.created_at),
    }


@account_app.command("create")
def account_create(
    name: Annotated[str, typer.Option(help="Who the account is for.")],
    credits: Annotated[int, typer.Option(min=0, help="Opening balance.")] = 0,
    as_json: JsonFlag = False,
) -> None:
    """Create an account, optionally with credits."""

    async def action(session: AsyncSession, s: AdminContext) -> Result:
        account = await billing.create_account(session, name, credits, s.clock.now())
        obj = {"id": account.id, "name": name, "credits": credits}
        return f"created account {account.id} ({name}) with {credits} credits", obj

    run_action(action, as_json)


@account_app.command("top-up")
def account_top_up(
    account_id: str,
    credits: Annotated[int, typer.Argument(help="Credits to add (negative to correct).")],
    as_json: JsonFlag = False,
) -> None:
    """Add credits to an account."""

    async def action(session: AsyncSession, s: AdminContext) -> Result:
        new = await billing.top_up(
            session, account_id, credits, s.clock.now(), note="admin top-up", source="operator"
        )
        obj = {"id": account_id, "added": credits, "credits": new}
        return f"account {account_id}: +{credits} credits, balance {new}", obj

    run_action(action, as_json)


def _set_banned(account_id: str, banned: bool, as_json: bool) -> None:
    async def action(session: AsyncSession, s: AdminContext) -> Result:
        await users.set_account_banned(session, account_id, banned)
        line = f"account {account_id} {'banned' if banned else 'unbanned'}"
        return line, {"id": account_id, "banned": banned}

    run_action(action, as_json)


@account_app.command("ban")
def account_ban(account_id: str, as_json: JsonFlag = False) -> None:
    """Ban an account: all its keys are refused from the next request on."""
    _set_banned(account_id, True, as_json)


@account_app.command("unban")
def account_unban(account_id: str, as_json: JsonFlag = False) -> None:
    """Lift a ban."""
    _set_banned(account_id, False, as_json)


@account_app.command("show")
def account_show(account_id: str, as_json: JsonFlag = False) -> None:
    """Balance, keys and recent ledger entries of an account."""

    async def action(session: AsyncSession, s: AdminContext) -> Result:
        account = await billing.get_account(session, account_id)
        key_rows = await keys.list_keys(session, account_id)
        entries = await billing.recent_entries(session, account_id)
        secret = await callbacks.webhook_secret(session, account_id)
        obj = {
            "id": account.id,
            "name": account.name,
            "credits": account.credits,
            "banned": account.banned,
            "created_at": int(account.created_at),
            "webhook_secret": secret,
            "keys": [key_json(k) for k in key_rows],
            "ledger": [_entry_json(e) for e in entries],
        }
        return _account_text(obj), obj

    run_action(action, as_json)


def _account_text(obj: dict[str, Any]) -> str:
    lines = [
        f"account {obj['id']} ({obj['name']}): {obj['credits']} credits"
        + (", BANNED" if obj["banned"] else ""),
        f"  webhook secret {obj['webhook_secret']}",
    ]
    lines += [f"  key {k['id']} {k['prefix']}... {k['status']} {k['name']}" for k in obj["keys"]]
    lines += [
        f"  {e['kind']:>7} {e['amount']:+d} {e['task_id'] or e['note']}" for e in obj["ledger"]
    ]
    return "\n".join(lines)


@account_app.command("rotate-webhook-secret")
def account_rotate_webhook_secret(account_id: str, as_json: JsonFlag = False) -> None:
    """Replace the account's callback signing secret; later attempts are signed with the new one."""

    async def action(session: AsyncSession, s: AdminContext) -> Result:
        secret = await callbacks.rotate_webhook_secret(session, account_id)
        obj = {"id": account_id, "webhook_secret": secret}
        return f"account {account_id}: new webhook secret {secret}", obj

    run_action(action, as_json)

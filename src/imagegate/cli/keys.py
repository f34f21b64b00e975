"""`imagegate admin key ...`: issue keys, set their access policy, switch them off."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from imagegate.billing import service as billing
from imagegate.cli.common import AdminContext, JsonFlag, Result, run_action
from imagegate.keys import service as keys
from imagegate.keys.policy import PolicyChange, key_json

app = typer.Typer(help="API keys and their access policy.", no_args_is_help=True)

AllowIp = Annotated[
    list[str] | None,
    typer.Option(
        "--allow-ip", help="IP or CIDR allowed to use the key (repeatable; 'any' clears)."
    ),
]
RateLimit = Annotated[
    str | None, typer.Option("--rate-limit", help="Requests per minute ('none': the default).")
]
Hourly = Annotated[
    str | None, typer.Option("--hourly-limit", help="Credits per rolling hour ('none' clears).")
]
Daily = Annotated[
    str | None, typer.Option("--daily-limit", help="Credits per rolling day ('none' clears).")
]
Total = Annotated[
    str | None, typer.Option("--total-limit", help="Credits in total ('none' clears).")
]
Expires = Annotated[
    str | None, typer.Option("--expires", help="ISO 8601 time the key stops working ('never').")
]
Model = Annotated[
    list[str] | None,
    typer.Option("--model", help="Model the key may use (repeatable; 'any' clears)."),
]


@app.command("create")
def key_create(
    account: Annotated[str, typer.Option("--account", help="Account id.")],
    name: Annotated[str, typer.Option(help="A label for the key.")] = "",
    allow_ip: AllowIp = None,
    rate_limit: RateLimit = None,
    hourly_limit: Hourly = None,
    daily_limit: Daily = None,
    total_limit: Total = None,
    expires: Expires = None,
    model: Model = None,
    as_json: JsonFlag = False,
) -> None:
    """Issue a key. It is printed once and stored only as a hash."""
    change = PolicyChange(
        allow_ip, rate_limit, hourly_limit, daily_limit, total_limit, expires, model
    )

    async def action(session: AsyncSession, s: AdminContext) -> Result:
        key, plaintext = await keys.create_key(
            session, s.hasher, account, name, s.clock.now(), change
        )
        obj = {**key_json(key), "key": plaintext}
        return f"created key {key.id} for account {account}: {plaintext}", obj

    run_action(action, as_json)


@app.command("update")
def key_update(
    key_id: str,
    allow_ip: AllowIp = None,
    rate_limit: RateLimit = None,
    hourly_limit: Hourly = None,
    daily_limit: Daily = None,
    total_limit: Total = None,
    expires: Expires = None,
    model: Model = None,
    as_json: JsonFlag = False,
) -> None:
    """Change a key's access policy; flags not given stay as they are."""
    change = PolicyChange(
        allow_ip, rate_limit, hourly_limit, daily_limit, total_limit, expires, model
    )

    async def action(session: AsyncSession, s: AdminContext) -> Result:
        key = await keys.update_key(session, key_id, change)
        obj = key_json(key)
        return f"key {key_id} updated: {_policy_text(obj)}", obj

    run_action(action, as_json)


@app.command("show")
def key_show(key_id: str, as_json: JsonFlag = False) -> None:
    """A key's policy and its current spend (net of refunds)."""

    async def action(session: AsyncSession, s: AdminContext) -> Result:
        key = await keys.get_live_key(session, key_id)
        spend = await keys.key_spend(session, key_id, s.clock.now())
        usage = {
            "spent_last_hour": spend.last_hour,
            "spent_last_day": spend.last_day,
            "spent_total": spend.total,
            "rate_limit_effective": key.rate_limit or s.settings.rate_limit_per_minute,
        }
        obj = {**key_json(key), "usage": usage}
        line = f"key {key.id} {key.prefix}... {key.status} {key.name}\n  {_policy_text(obj)}"
        line += "\n  usage: " + ", ".join(f"{k} {v}" for k, v in usage.items())
        return line, obj

    run_action(action, as_json)


def _policy_text(obj: dict[str, Any]) -> str:
    names = ("allowed_ips", "rate_limit", "hourly_limit", "daily_limit", "total_limit")
    parts = [f"{name} {obj[name]}" for name in names if obj[name]]
    parts += [f"{name} {obj[name]}" for name in ("expires_at", "models") if obj[name]]
    return ", ".join(parts) or "no restrictions"


def _set_status(key_id: str, status: str, as_json: bool) -> None:
    async def action(session: AsyncSession, s: AdminContext) -> Result:
        key = await keys.set_key_status(session, key_id, status)
        return f"key {key_id} {status}", {"id": key.id, "status": key.status}

    run_action(action, as_json)


@app.command("disable")
def key_disable(key_id: str, as_json: JsonFlag = False) -> None:
    """Refuse a key until it is enabled again."""
    _set_status(key_id, "disabled", as_json)


@app.command("enable")
def key_enable(key_id: str, as_json: JsonFlag = False) -> None:
    """Accept a disabled key again."""
    _set_status(key_id, "active", as_json)


@app.command("delete")
def key_delete(key_id: str, as_json: JsonFlag = False) -> None:
    """Refuse a key for good."""
    _set_status(key_id, "deleted", as_json)


@app.command("list")
def key_list(
    account: Annotated[str, typer.Option("--account", help="Account id.")],
    as_json: JsonFlag = False,
) -> None:
    """The keys of an account (never the keys themselves: only their prefixes)."""

    async def action(session: AsyncSession, s: AdminContext) -> Result:
        await billing.get_account(session, account)
        rows = [key_json(k) for k in await keys.list_keys(session, account)]
        lines = [f"{k['id']} {k['prefix']}... {k['status']} {k['name']}" for k in rows]
        return "\n".join(lines) or "no keys", {"account_id": account, "keys": rows}

    run_action(action, as_json)

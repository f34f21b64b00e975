"""`imagegate admin codes ...`: batches of redemption codes.

`create` prints the codes once (the database keeps only their hashes); `list` and `show` print
batches and, by hint, which codes were redeemed, when and by which account, never the codes.
Times are printed as they are read: ISO 8601 in UTC (2027-01-01T00:00:00Z).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from imagegate.billing import codes
from imagegate.billing.codes import BatchRow
from imagegate.cli.common import AdminContext, JsonFlag, Result, run_action
from imagegate.db.models import RedemptionCode

app = typer.Typer(help="Redemption codes: batches of single-use credits.", no_args_is_help=True)


def batch_json(row: BatchRow) -> dict[str, Any]:
    return {
        "batch_id": row.id,
        "credits": row.credits,
        "count": row.count,
        "redeemed": row.redeemed,
        "note": row.note,
        "created_at": codes.iso(row.created_at),
        "expires_at": codes.iso(row.expires_at),
    }


def _batch_line(obj: dict[str, Any]) -> str:
    expires = obj["expires_at"] or "never"
    note = f" ({obj['note']})" if obj["note"] else ""
    return (
        f"{obj['batch_id']}{note}: {obj['count']} codes of {obj['credits']} credits, "
        f"{obj['redeemed']} redeemed, expires {expires}"
    )


@app.command("create")
def codes_create(
    credits: Annotated[int, typer.Option("--credits", help="Credits each code is worth.")],
    count: Annotated[
        int, typer.Option("--count", help=f"How many codes (1 to {codes.MAX_COUNT}).")
    ],
    expires: Annotated[
        str, typer.Option("--expires", help="ISO 8601 time the codes stop working.")
    ] = "",
    note: Annotated[str, typer.Option("--note", help="What the batch is for.")] = "",
    as_json: JsonFlag = False,
) -> None:
    """Make a batch of codes and print them, once."""

    async def action(session: AsyncSession, s: AdminContext) -> Result:
        now = s.clock.now()
        spec = codes.parse_batch(credits, count, expires, note, now)
        made = await codes.create_batch(session, spec, now)
        batch = made.batch
        obj = {
            "batch_id": batch.id,
            "credits": batch.credits,
            "count": batch.count,
            "expires_at": codes.iso(batch.expires_at),
            "codes": made.codes,
        }
        header = (
            f"created batch {batch.id}: {batch.count} codes of {batch.credits} credits, "
            f"expires {obj['expires_at'] or 'never'}; they are not shown again:"
        )
        return "\n".join([header, *made.codes]), obj

    run_action(action, as_json)


@app.command("list")
def codes_list(as_json: JsonFlag = False) -> None:
    """Batches, newest first, with how many of their codes were redeemed."""

    async def action(session: AsyncSession, s: AdminContext) -> Result:
        rows = [batch_json(row) for row in await codes.list_batches(session)]
        lines = [_batch_line(row) for row in rows]
        return "\n".join(lines) or "no batches", {"batches": rows}

    run_action(action, as_json)


def _code_json(code: RedemptionCode) -> dict[str, Any]:
    return {
        "id": code.id,
        "hint": code.hint,
        "redeemed_at": codes.iso(code.redeemed_at),
        "account_id": code.account_id,
    }


def _code_line(obj: dict[str, Any]) -> str:
    if obj["redeemed_at"] is None:
        return f"  …{obj['hint']} unused"
    return f"  …{obj['hint']} redeemed {obj['redeemed_at']} by account {obj['account_id']}"


@app.command("show")
def codes_show(batch_id: str, as_json: JsonFlag = False) -> None:
    """A batch and its codes by hint: which were redeemed, when and by which account."""

    async def action(session: AsyncSession, s: AdminContext) -> Result:
        obj = batch_json(await codes.get_batch(session, batch_id))
        obj["codes"] = [_code_json(c) for c in await codes.batch_codes(session, batch_id)]
        lines = [_batch_line(obj), *(_code_line(c) for c in obj["codes"])]
        return "\n".join(lines), obj

    run_action(action, as_json)

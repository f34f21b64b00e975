"""`imagegate admin model ...` and `imagegate admin plan ...`: the model catalogue and price plans.

Both only parse options and print: every rule is in catalog/service.py and billing/plans.py, the
same functions the console calls. A refused change exits 1 with one line naming the option, and
changes nothing (the action's transaction rolls back).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Annotated, Any

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from imagegate.billing import plans
from imagegate.catalog import RENDERING_SPEEDS, CatalogModel, service
from imagegate.catalog.service import CatalogError, ModelChange
from imagegate.cli.common import AdminContext, JsonFlag, Result, run_action
from imagegate.db.models import PricePlan
from imagegate.db.sql import SessionTx

app = typer.Typer(help="The model catalogue: prices, sizes and routes.", no_args_is_help=True)
plan_app = typer.Typer(help="Price plans: list prices times a ratio.", no_args_is_help=True)

# The option a refused field came from (CatalogError.field), so the error says what to fix.
_OPTION = {
    "name": "NAME",
    "title": "--title",
    "prices": "--price-turbo/--price-balanced/--price-quality",
    "reports": "--reports",
    "sizes": "--size",
    "providers": "--provider",
    "upstream": "--upstream-json",
    "queue": "--queue",
}

Title = Annotated[str | None, typer.Option("--title", help="The name people see.")]
Turbo = Annotated[int | None, typer.Option("--price-turbo", help="Credits per TURBO image.")]
Balanced = Annotated[
    int | None, typer.Option("--price-balanced", help="Credits per BALANCED image.")
]
Quality = Annotated[int | None, typer.Option("--price-quality", help="Credits per QUALITY image.")]
Reports = Annotated[
    str | None, typer.Option("--reports", help="The output.metadata.model its tasks show.")
]
Size = Annotated[
    list[str] | None, typer.Option("--size", help="A size it offers, e.g. 16:9 (repeatable).")
]
Provider = Annotated[
    list[str] | None,
    typer.Option("--provider", help="Its route, in order (repeatable): simulator, ideogram, ..."),
]
Upstream = Annotated[
    str | None,
    typer.Option("--upstream-json", help='Per provider, how to call it: {"replicate": {...}}.'),
]
Queue = Annotated[str | None, typer.Option("--queue", help="The job queue its tasks go to.")]
Active = Annotated[
    bool | None, typer.Option("--active/--inactive", help="Offered to clients, or not.")
]


def model_json(model: CatalogModel) -> dict[str, Any]:
    obj = asdict(model)
    obj["prices"] = {s: model.prices[s] for s in RENDERING_SPEEDS if s in model.prices}
    return obj


def _route(obj: dict[str, Any]) -> str:
    return ", ".join(obj["providers"]) if obj["providers"] else "default"


def _model_line(obj: dict[str, Any]) -> str:
    prices = "/".join(str(p) for p in obj["prices"].values())
    speeds = "/".join(obj["prices"])
    state = "active" if obj["active"] else "inactive"
    return f"{obj['name']}: {state}, {prices} credits ({speeds}), route {_route(obj)}"


def _model_text(obj: dict[str, Any]) -> str:
    return "\n".join(
        [
            f"{obj['name']} ({obj['title']}): {'active' if obj['active'] else 'inactive'}",
            "  prices   " + ", ".join(f"{s} {p}" for s, p in obj["prices"].items()),
            f"  reports  {obj['reports']}",
            f"  sizes    {', '.join(obj['sizes'])}",
            f"  route    {_route(obj)}",
            f"  upstream {json.dumps(obj['upstream'])}",
            f"  queue    {obj['queue']}",
        ]
    )


def _change(
    title: str | None,
    prices: dict[str, int] | None,
    reports: str | None,
    size: list[str] | None,
    provider: list[str] | None,
    upstream_json: str | None,
    queue: str | None,
    active: bool | None,
    default_route: bool = False,
) -> ModelChange:
    """The ModelChange the options give; ValueError (CatalogError for --upstream-json) for
    options that cannot be read."""
    upstream = None if upstream_json is None else service.parse_upstream(upstream_json)
    if default_route and provider:
        raise ValueError("--provider and --default-route cannot be used together")
    return ModelChange(
        title=title,
        prices=prices,
        reports=reports,
        sizes=None if size is None else tuple(size),
        providers=None if provider is None else tuple(provider),
        clear_providers=default_route,
        upstream=upstream,
        queue=queue,
        active=active,
    )


def _given(turbo: int | None, balanced: int | None, quality: int | None) -> dict[str, int]:
    given = {"TURBO": turbo, "BALANCED": balanced, "QUALITY": quality}
    return {speed: price for speed, price in given.items() if price is not None}


def _refused(exc: CatalogError) -> ValueError:
    return ValueError(f"{_OPTION.get(exc.field, exc.field)}: {exc}")


@app.command("list")
def model_list(as_json: JsonFlag = False) -> None:
    """Every model, active or not: prices and route."""

    async def action(session: AsyncSession, s: AdminContext) -> Result:
        rows = [model_json(m) for m in await service.list_models(SessionTx(session))]
        return "\n".join(_model_line(row) for row in rows) or "no models", {"models": rows}

    run_action(action, as_json)


@app.command("show")
def model_show(name: str, as_json: JsonFlag = False) -> None:
    """Every field of a model."""

    async def action(session: AsyncSession, s: AdminContext) -> Result:
        obj = model_json(await service.get_model(SessionTx(session), name))
        return _model_text(obj), obj

    run_action(action, as_json)


@app.command("create")
def model_create(
    name: str,
    title: Title = None,
    price_turbo: Turbo = None,
    price_balanced: Balanced = None,
    price_quality: Quality = None,
    reports: Reports = None,
    size: Size = None,
    provider: Provider = None,
    upstream_json: Upstream = None,
    queue: Queue = None,
    active: Active = None,
    as_json: JsonFlag = False,
) -> None:
    """Add a model (active unless --inactive): title, the three prices and reports are needed."""
    prices = _given(price_turbo, price_balanced, price_quality) or None

    async def action(session: AsyncSession, s: AdminContext) -> Result:
        try:
            change = _change(title, prices, reports, size, provider, upstream_json, queue, active)
            model = await service.create_model(SessionTx(session), name, change, s.clock.now())
        except CatalogError as exc:
            raise _refused(exc) from None
        obj = model_json(model)
        return f"created model {_model_line(obj)}", obj

    run_action(action, as_json)


@app.command("update")
def model_update(
    name: str,
    title: Title = None,
    price_turbo: Turbo = None,
    price_balanced: Balanced = None,
    price_quality: Quality = None,
    reports: Reports = None,
    size: Size = None,
    provider: Provider = None,
    default_route: Annotated[
        bool, typer.Option("--default-route", help="Back to the operator's default route.")
    ] = False,
    upstream_json: Upstream = None,
    queue: Queue = None,
    active: Active = None,
    as_json: JsonFlag = False,
) -> None:
    """Change a model: options not given stay as they are (a price given alone changes alone)."""
    given = _given(price_turbo, price_balanced, price_quality)

    async def action(session: AsyncSession, s: AdminContext) -> Result:
        tx = SessionTx(session)
        try:
            change = _change(
                title, given or None, reports, size, provider, upstream_json, queue, active,
                default_route,
            )  # fmt: skip
            model = await service.update_model(tx, name, change, s.clock.now())
        except CatalogError as exc:
            raise _refused(exc) from None
        obj = model_json(model)
        return f"updated model {_model_line(obj)}", obj

    run_action(action, as_json)


def _set_active(name: str, active: bool, as_json: bool) -> None:
    async def action(session: AsyncSession, s: AdminContext) -> Result:
        model = await service.set_active(SessionTx(session), name, active, s.clock.now())
        obj = model_json(model)
        return f"model {name} {'activated' if active else 'deactivated'}", obj

    run_action(action, as_json)


@app.command("activate")
def model_activate(name: str, as_json: JsonFlag = False) -> None:
    """Offer the model: clients' next creates may use it."""
    _set_active(name, True, as_json)


@app.command("deactivate")
def model_deactivate(name: str, as_json: JsonFlag = False) -> None:
    """Stop offering the model: new creates get 404 model_not_found; accepted tasks finish."""
    _set_active(name, False, as_json)


def plan_json(plan: PricePlan) -> dict[str, Any]:
    return {
        "name": plan.name,
        "ratio": plan.ratio,
        "created_at": int(plan.created_at),
        "updated_at": int(plan.updated_at),
    }


def _plan_line(obj: dict[str, Any]) -> str:
    return f"{obj['name']}: list prices x {obj['ratio']}, rounded up to a whole credit"


@plan_app.command("list")
def plan_list(as_json: JsonFlag = False) -> None:
    """Every price plan and its ratio."""

    async def action(session: AsyncSession, s: AdminContext) -> Result:
        rows = [plan_json(p) for p in await plans.list_plans(session)]
        return "\n".join(_plan_line(row) for row in rows) or "no plans", {"plans": rows}

    run_action(action, as_json)


@plan_app.command("set")
def plan_set(
    name: str,
    ratio: Annotated[str, typer.Argument(help="A decimal from 0 to 100, e.g. 0.8.")],
    as_json: JsonFlag = False,
) -> None:
    """Create a plan, or change its ratio: its accounts pay the new prices from their next task."""

    async def action(session: AsyncSession, s: AdminContext) -> Result:
        obj = plan_json(await plans.save_plan(session, name, ratio, s.clock.now()))
        return f"plan {_plan_line(obj)}", obj

    run_action(action, as_json)


@plan_app.command("assign")
def plan_assign(
    account_id: str,
    plan: Annotated[str, typer.Argument(help="The plan, or 'none' for list prices.")],
    as_json: JsonFlag = False,
) -> None:
    """Put an account on a plan ('none': back to list prices)."""
    chosen = None if plan == plans.NO_PLAN else plan

    async def action(session: AsyncSession, s: AdminContext) -> Result:
        account = await plans.set_account_plan(session, account_id, chosen)
        obj = {"id": account.id, "price_plan": account.price_plan}
        where = f"on plan {chosen}" if chosen else "on list prices"
        return f"account {account.id} {where}", obj

    run_action(action, as_json)

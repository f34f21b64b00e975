"""What every admin verb shares: one transaction, one human line or JSON object, exit 1 on error."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from imagegate.config import Settings
from imagegate.db.migrate import upgrade
from imagegate.services import Services, build_services

JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]
Action = Callable[[AsyncSession, Services], Awaitable[tuple[str, dict[str, Any]]]]


ServicesAction = Callable[[Services], Awaitable[tuple[str, dict[str, Any]]]]


def run_action(action: Action, as_json: bool) -> None:
    """Run ``action`` in one transaction and print its human line or its JSON object."""

    async def in_transaction(services: Services) -> tuple[str, dict[str, Any]]:
        async with services.db.transaction() as session:
            return await action(session, services)

    run_with_services(in_transaction, as_json)


def run_with_services(action: ServicesAction, as_json: bool) -> None:
    """Run ``action`` (which opens the transactions it needs) and print its result."""
    settings = Settings()
    upgrade(settings.resolved_database_url)

    async def go() -> tuple[str, dict[str, Any]]:
        services = build_services(settings)
        try:
            return await action(services)
        finally:
            await services.close()

    try:
        line, obj = asyncio.run(go())
    except (LookupError, ValueError) as exc:
        message = f"not found: {exc.args[0]}" if isinstance(exc, LookupError) else str(exc)
        typer.echo(json.dumps({"error": message}) if as_json else f"error: {message}", err=True)
        raise typer.Exit(1) from None
    typer.echo(json.dumps(obj) if as_json else line)

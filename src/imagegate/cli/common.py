"""What every admin verb shares: a small context, one transaction, one human line or JSON object,
exit 1 on error.

An admin command runs beside a live server on a production database, so it never migrates: a
schema this release does not match (behind, or newer than it knows) is refused before anything
runs. And it builds only what the verbs use (settings, clock, database, key hasher), not the
server's providers, clients and limiters: a command starts in a fraction of a second.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Annotated, Any

import typer
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from imagegate.clock import Clock
from imagegate.config import Settings
from imagegate.db.database import Database
from imagegate.db.migrate import database_revision, schema_problem
from imagegate.keys.secret import load_or_create_secret
from imagegate.keys.service import KeyHasher

JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]
Result = tuple[str, dict[str, Any]]  # the human line, the JSON object


@dataclass
class AdminContext:
    """What admin verbs use: the settings, the clock, the database, and the key hasher."""

    settings: Settings
    clock: Clock
    db: Database

    @cached_property
    def hasher(self) -> KeyHasher:
        """The server's key hasher; its secret is read (or made, as a server would) on first
        use, so verbs that hash nothing never touch it."""
        return KeyHasher(load_or_create_secret(self.settings.data_dir, self.settings.secret_key))

    @property
    def public_url(self) -> str:
        return self.settings.resolved_public_url


Action = Callable[[AsyncSession, AdminContext], Awaitable[Result]]
ContextAction = Callable[[AdminContext], Awaitable[Result]]


class Unusable(Exception):
    """The database cannot be used: unreachable, or its schema is not this release's (the
    message says which)."""


def run_action(action: Action, as_json: bool) -> None:
    """Run ``action`` in one transaction and print its human line or its JSON object."""

    async def in_transaction(context: AdminContext) -> Result:
        async with context.db.transaction() as session:
            return await action(session, context)

    run_with_context(in_transaction, as_json)


def run_with_context(action: ContextAction, as_json: bool) -> None:
    """Check the schema, run ``action`` (which opens the transactions it needs) and print its
    result; errors are printed (as JSON with --json) and exit 1."""
    settings = Settings()
    try:
        line, obj = asyncio.run(_run(settings, action))
    except (LookupError, ValueError, Unusable) as exc:
        message = f"not found: {exc.args[0]}" if isinstance(exc, LookupError) else str(exc)
        typer.echo(json.dumps({"error": message}) if as_json else f"error: {message}", err=True)
        raise typer.Exit(1) from None
    typer.echo(json.dumps(obj) if as_json else line)


async def _run(settings: Settings, action: ContextAction) -> Result:
    # One transaction at a time: a connection or two, however large the server's pool is.
    db = Database(settings.resolved_database_url, pool_size=1, pool_overflow=1)
    try:
        try:
            revision = await database_revision(db.engine)
        except DBAPIError as exc:
            reason = " ".join(str(exc.orig).split())  # psycopg's runs over several lines
            raise Unusable(f"cannot reach the database: {reason}") from None
        problem = schema_problem(revision)
        if problem is not None:
            raise Unusable(problem)
        return await action(AdminContext(settings, Clock(), db))
    finally:
        await db.dispose()
        await asyncio.to_thread(_join_sqlite_threads)


def _join_sqlite_threads() -> None:
    """Let aiosqlite's connection threads end while the loop still runs: a connection that
    failed to open stops its thread after the error is raised, and that thread's last callback
    would otherwise land on a closed loop and print a traceback under our one-line error."""
    for thread in threading.enumerate():
        if "_connection_worker_thread" in thread.name:
            thread.join(timeout=2)

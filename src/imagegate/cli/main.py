"""The `imagegate` command: serve, worker, db, admin, jobs."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from imagegate.cli import admin, jobs
from imagegate.config import Settings
from imagegate.db.migrate import problem_at, upgrade

app = typer.Typer(
    help="imagegate: a self-hostable text-to-image API gateway.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(admin.app, name="admin")
app.add_typer(jobs.app, name="jobs")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    no_worker: Annotated[
        bool, typer.Option("--no-worker", help="API only; `imagegate worker` runs the jobs.")
    ] = False,
) -> None:
    """Run the API, with an in-process worker unless --no-worker (scale-out)."""
    from imagegate import serving
    from imagegate.app import create_app
    from imagegate.bootstrap import FirstStart, create_demo_account, demo_banner
    from imagegate.services import build_services

    overrides = {k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    settings = Settings(**overrides)  # type: ignore[arg-type]
    upgrade(settings.resolved_database_url)

    async def first_start() -> FirstStart | None:
        services = build_services(settings)
        try:
            return await create_demo_account(services)
        finally:
            await services.close()

    demo = asyncio.run(first_start())
    if demo is not None:
        banner = demo_banner(settings.resolved_public_url, demo, settings.demo_credits)
        typer.echo(banner)
    serving.serve(create_app(settings, run_worker=not no_worker, migrate=False), settings)


@app.command()
def worker(
    queue: Annotated[
        list[str] | None,
        typer.Option("--queue", help="Only these queues (repeatable): model:<name> or callbacks."),
    ] = None,
    concurrency: Annotated[
        int | None, typer.Option(min=1, help="Jobs at once per pool (default: the settings).")
    ] = None,
) -> None:
    """Run jobs without the API (scale-out: any number, on any machine, one database)."""
    from imagegate.jobs.process import run_workers

    settings = Settings()
    problem = problem_at(settings.resolved_database_url)
    if problem:  # behind, newer than this release, or missing: never run on a wrong schema
        typer.echo(f"error: {problem}", err=True)
        raise typer.Exit(1)
    asyncio.run(run_workers(settings, queue, concurrency))


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the schema to the newest version."""
    settings = Settings()
    upgrade(settings.resolved_database_url)
    typer.echo("database is up to date")


def main() -> None:
    app()

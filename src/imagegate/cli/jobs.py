"""`imagegate jobs`: list, retry and cancel jobs, on either engine (the table queue on SQLite,
procrastinate on PostgreSQL)."""

from __future__ import annotations

from typing import Annotated

import typer

from imagegate.cli.common import AdminContext, JsonFlag, Result, run_with_context
from imagegate.jobs.admin import STATUSES, JobAdmin, JobInfo

app = typer.Typer(
    help="Jobs: list, retry a failed one, cancel a waiting one.", no_args_is_help=True
)


def _admin(context: AdminContext) -> JobAdmin:
    """Listing and retrying read and write the jobs' table alone: no job kinds needed."""
    return JobAdmin(context.db, {}, context.clock)


def _line(job: JobInfo) -> str:
    due = "" if job.due_at is None else f" due {job.due_at:.0f}"
    error = f" error={job.error}" if job.error else ""
    return (
        f"job {job.id} {job.status} queue={job.queue} kind={job.kind}"
        f" attempts={job.attempts}{due} args={job.args}{error}"
    )


@app.command("list")
def jobs_list(
    status: Annotated[
        str | None, typer.Option(help=f"Only jobs in this state: {', '.join(STATUSES)}.")
    ] = None,
    queue: Annotated[str | None, typer.Option(help="Only this queue.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many, newest first.")] = 100,
    as_json: JsonFlag = False,
) -> None:
    """Jobs that wait, run, failed or were cancelled (finished ones are deleted), newest first."""
    if status is not None and status not in STATUSES:
        typer.echo(f"error: --status must be one of {', '.join(STATUSES)}", err=True)
        raise typer.Exit(2)

    async def action(context: AdminContext) -> Result:
        jobs = await _admin(context).list(status, queue, limit)
        lines = "\n".join(_line(job) for job in jobs) or "no jobs"
        return lines, {"jobs": [job.as_dict() for job in jobs]}

    run_with_context(action, as_json)


@app.command("retry")
def jobs_retry(job_id: int, as_json: JsonFlag = False) -> None:
    """Run a failed job again, now, with its attempts counted from zero."""

    async def action(context: AdminContext) -> Result:
        job = await _admin(context).retry(job_id)
        return f"retrying: {_line(job)}", job.as_dict()

    run_with_context(action, as_json)


@app.command("cancel")
def jobs_cancel(job_id: int, as_json: JsonFlag = False) -> None:
    """Cancel a waiting job; its task fails and is refunded (a callback is marked failed)."""

    async def action(context: AdminContext) -> Result:
        # The kind's give_up runs, as after a last failed attempt: the worker's own wiring of
        # the job kinds (a task fails and is refunded, its callback planned), built for this
        # verb alone.
        from imagegate.services import build_services, job_kinds

        services = build_services(context.settings, context.clock)
        try:
            job = await JobAdmin(context.db, job_kinds(services), context.clock).cancel(job_id)
        finally:
            await services.close()
        return f"cancelled: {_line(job)}", job.as_dict()

    run_with_context(action, as_json)

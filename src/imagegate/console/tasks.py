"""The tasks pages: the list (filters, cursor pages), one task (images, input, callback log) and
the thumbnails of completed tasks. HTTP only: the rules and the SQL are in tasks.service."""

from __future__ import annotations

import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from starlette.datastructures import QueryParams

from imagegate.console.auth import PageNotFound, Who
from imagegate.console.web import render, services_of, short_id
from imagegate.db.models import ApiKey, Task
from imagegate.errors import TaskNotFound
from imagegate.keys.service import list_keys
from imagegate.storage.thumbnails import MEDIA_TYPE, THUMBNAILS, Thumbnails
from imagegate.tasks import listing as tasks
from imagegate.tasks.listing import TaskFilter
from imagegate.tasks.service import get_task
from imagegate.tasks.status import TaskStatus
from imagegate.users.service import SignedIn

router = APIRouter(prefix="/console")
T = TypeVar("T")

PAGE_SIZE = 20
# A thumbnail never changes once made; only this browser may keep it (it is the account's).
THUMBNAIL_HEADERS = {
    "Cache-Control": "private, max-age=31536000, immutable",
    "X-Content-Type-Options": "nosniff",
}


def utc_time(seconds: float | None) -> str:
    """A moment as people read it in the console: ``YYYY-MM-DD HH:MM:SS UTC`` ('' for None)."""
    if seconds is None:
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(seconds))


def key_label(key: ApiKey) -> str:
    """A key as people tell keys apart: its name and ``sk-…`` prefix and last 4."""
    shown = f"{key.prefix}…{key.last4}"
    return f"{key.name} ({shown})" if key.name else shown


def image_path(key: str) -> str:
    """The hosted image on this console's own origin (the CSP allows images from 'self')."""
    return f"/images/{key}"


def thumbnail_path(task: Task, n: int = 0) -> str:
    return f"/console/tasks/{task.id}/thumbnails/{n}"


def row_helpers() -> dict[str, Any]:
    """What the task rows of a template need besides the data."""
    return {"utc": utc_time, "thumbnail_path": thumbnail_path, "image_path": image_path}


@dataclass
class Listing:
    """The list's query string, read: the filter, the page, and the values to refill the form."""

    where: TaskFilter = field(default_factory=TaskFilter)
    cursor: str | None = None
    limit: int = PAGE_SIZE
    form: dict[str, str] = field(default_factory=dict)

    def url(self, cursor: str | None = None) -> str:
        """This list (same filters and page size) at ``cursor``."""
        params = {name: value for name, value in self.form.items() if value}
        if self.limit != PAGE_SIZE:
            params["limit"] = str(self.limit)
        if cursor:
            params["cursor"] = cursor
        return "/console/tasks" + (f"?{urlencode(params)}" if params else "")


def _day(value: str, label: str) -> date | None:
    if not value:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        day = None
    if day is None or not 1970 <= day.year <= 9998:
        raise ValueError(f"{label} must be a date like 2026-01-31.")
    return day


def _midnight(day: date) -> float:
    return datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()


def _limit(value: str) -> int:
    if not value:
        return PAGE_SIZE
    if not value.isdecimal() or not 1 <= int(value) <= tasks.MAX_PAGE:
        raise ValueError(f"The page size must be a number from 1 to {tasks.MAX_PAGE}.")
    return int(value)


def parse_listing(params: QueryParams) -> Listing:
    """The list's filters from the query string; ValueError with a message for people.
    Dates are whole UTC days, both ends included."""
    form = {name: params.get(name, "").strip() for name in ("status", "key", "from", "to")}
    listing = Listing(form=form)
    listing.limit = _limit(params.get("limit", "").strip())
    if form["status"] and form["status"] not in tasks.TASK_STATUSES:
        raise ValueError("Choose a status from the list.")
    first, last = _day(form["from"], "From date"), _day(form["to"], "To date")
    if first and last and first > last:
        raise ValueError("The From date is after the To date.")
    listing.where = TaskFilter(
        status=form["status"] or None,
        key_id=form["key"] or None,
        created_from=_midnight(first) if first else None,
        created_before=_midnight(last + timedelta(days=1)) if last else None,
    )
    listing.cursor = params.get("cursor") or None
    return listing


@router.get("/tasks", response_class=HTMLResponse)
async def task_list(request: Request, who: Who) -> Response:
    services = services_of(request)
    async with services.db.sessions() as session:
        keys = await list_keys(session, who.account_id)
        try:
            listing = parse_listing(request.query_params)
            page = await tasks.list_tasks(
                session, who.account_id, listing.where, cursor=listing.cursor, limit=listing.limit
            )
        except ValueError as exc:
            return _list_page(request, who, keys, Listing(form=_given(request)), error=str(exc))
        refunds = await tasks.refunds(session, who.account_id, [t.id for t in page.tasks])
    return _list_page(request, who, keys, listing, page=page, refunds=refunds)


def _given(request: Request) -> dict[str, str]:
    return {name: request.query_params.get(name, "") for name in ("status", "key", "from", "to")}


def _list_page(
    request: Request,
    who: SignedIn,
    keys: list[ApiKey],
    listing: Listing,
    page: tasks.TaskPage | None = None,
    refunds: dict[str, int] | None = None,
    error: str | None = None,
) -> Response:
    return render(
        request,
        "tasks.html",
        who,
        400 if error else 200,
        title="Tasks",
        error=error,
        statuses=tasks.TASK_STATUSES,
        key_options=[(key.id, key_label(key)) for key in keys],
        key_labels={key.id: key_label(key) for key in keys},
        form=listing.form,
        limit=listing.limit if listing.limit != PAGE_SIZE else None,
        filtered=any(listing.form.values()),
        tasks=page.tasks if page else [],
        refunds=refunds or {},
        newest_url=listing.url() if page and (listing.cursor or page.newer_cursor) else None,
        newer_url=listing.url(page.newer_cursor) if page and page.newer_cursor else None,
        older_url=listing.url(page.next_cursor) if page and page.next_cursor else None,
        **row_helpers(),
    )


async def _found(pending: Awaitable[T]) -> T:
    """The task (or its detail) of the signed-in account; anything else is a 404 page."""
    try:
        return await pending
    except TaskNotFound:
        raise PageNotFound("There is no such task, or it is not yours to see.") from None


@router.get("/tasks/{task_id}", response_class=HTMLResponse)
async def task_page(request: Request, who: Who, task_id: str) -> Response:
    services = services_of(request)
    async with services.db.sessions() as session:
        detail = await _found(tasks.task_detail(session, who.account_id, task_id))
        keys = {key.id: key_label(key) for key in await list_keys(session, who.account_id)}
    return render(
        request,
        "tasks_detail.html",
        who,
        title=f"Task {short_id(detail.task.id)}",
        detail=detail,
        task=detail.task,
        key=keys.get(detail.task.key_id, "a deleted key"),
        public_url=services.public_url,
        **row_helpers(),
    )


@router.get("/tasks/{task_id}/thumbnails/{n}")
async def thumbnail(request: Request, who: Who, task_id: str, n: str) -> Response:
    """The n-th image of a completed task, small; made on the first request and kept."""
    services = services_of(request)
    async with services.db.sessions() as session:
        task = await _found(get_task(session, who.account_id, task_id))
    keys = task.output_urls or []
    if task.status != TaskStatus.COMPLETED or not n.isdecimal() or int(n) >= len(keys):
        raise PageNotFound("There is no such image.")
    thumbnails = Thumbnails(services.store, services.settings.data_dir / THUMBNAILS)
    path = await thumbnails.get(keys[int(n)])
    if path is None:
        raise PageNotFound("This image is no longer stored.")
    return FileResponse(path, media_type=MEDIA_TYPE, headers=THUMBNAIL_HEADERS)

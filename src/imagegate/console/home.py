"""The overview page: balance, credits spent today and this month (UTC), tasks in flight and
the last tasks; for a new account, how to make a key and a first task."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from imagegate.billing import service as billing
from imagegate.console.auth import Who
from imagegate.console.tasks import row_helpers
from imagegate.console.web import render, services_of
from imagegate.db.models import Task
from imagegate.keys.service import list_keys
from imagegate.tasks import listing as tasks

router = APIRouter(prefix="/console")

LAST_TASKS = 5


@dataclass(frozen=True)
class Numbers:
    balance: int
    spent_today: int
    spent_this_month: int
    in_flight: int
    has_keys: bool


def day_and_month_start(now: float) -> tuple[float, float]:
    """The start of the current UTC day and of the current UTC month, in Unix seconds."""
    moment = datetime.fromtimestamp(now, UTC)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    return day.timestamp(), day.replace(day=1).timestamp()


@router.get("", response_class=HTMLResponse)
async def overview(request: Request, who: Who) -> Response:
    services = services_of(request)
    day, month = day_and_month_start(services.clock.now())
    account_id = who.account_id
    async with services.db.sessions() as session:
        numbers = Numbers(
            balance=await billing.balance(session, account_id),
            spent_today=await billing.spent(session, account_id, day),
            spent_this_month=await billing.spent(session, account_id, month),
            in_flight=await tasks.count_in_flight(session, account_id),
            has_keys=bool(await list_keys(session, account_id)),
        )
        last: list[Task] = (await tasks.list_tasks(session, account_id, limit=LAST_TASKS)).tasks
        refunds = await tasks.refunds(session, account_id, [task.id for task in last])
    return render(
        request,
        "overview.html",
        who,
        title="Overview",
        numbers=numbers,
        tasks=last,
        refunds=refunds,
        public_url=services.public_url,
        **row_helpers(),
    )

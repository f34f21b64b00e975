"""GET /v1/usage: an account's tasks and credits over UTC days, by day, key or rendering speed.

Tasks count on the UTC day they were created, and so do their credits: a task's charge and its
refund (if it failed) both belong to the task's day, so a period's net is what its tasks cost.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from imagegate.db.sql import Tx
from imagegate.errors import InvalidRequest
from imagegate.tasks.schemas import Usage, UsageCounts, UsageRow

DAY = 86400
MAX_DAYS = 366
DEFAULT_DAYS = 30
GROUPS = ("day", "key", "speed")

# The group's expression per dialect: day numbers (days since 1970-01-01, UTC), key, speed.
_GROUP: dict[str, dict[str, str]] = {
    "sqlite": {
        "day": "CAST(t.created_at / 86400 AS INTEGER)",
        "key": "t.key_id",
        "speed": "json_extract(t.input, '$.rendering_speed')",
    },
    "postgresql": {
        "day": "CAST(floor(t.created_at / 86400) AS bigint)",
        "key": "t.key_id",
        "speed": "t.input ->> 'rendering_speed'",
    },
}

_USAGE = (
    "SELECT {group}, COUNT(*),"
    " COALESCE(SUM(CASE WHEN t.status = 'completed' THEN 1 ELSE 0 END), 0),"
    " COALESCE(SUM(CASE WHEN t.status = 'failed' THEN 1 ELSE 0 END), 0),"
    " COALESCE(SUM(t.price), 0), COALESCE(SUM(r.amount), 0)"
    " FROM tasks t LEFT JOIN ledger_entries r ON r.task_id = t.id AND r.kind = 'refund'"
    " WHERE t.account_id = :account_id AND t.created_at >= :start AND t.created_at < :end"
    " GROUP BY 1 ORDER BY 1"
)


def period(start: str | None, end: str | None, today: date) -> tuple[date, date]:
    """The inclusive UTC days asked for: ``end`` defaults to today, ``start`` to the 30 days that
    end there; InvalidRequest for a day that is not YYYY-MM-DD or a period out of bounds."""
    last = _day(end, "to") if end is not None else today
    if start is not None:
        first = _day(start, "from")
    else:  # the 30 days ending at ``last``, or as many as the calendar has before it
        first = last - timedelta(days=min(DEFAULT_DAYS - 1, (last - date.min).days))
    if first > last:
        raise InvalidRequest("'from' must not be after 'to'.")
    if (last - first).days + 1 > MAX_DAYS:
        raise InvalidRequest(f"The period must be at most {MAX_DAYS} days.")
    return first, last


def _day(value: str, name: str) -> date:
    try:
        if len(value) != 10:
            raise ValueError(value)
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidRequest(f"'{name}' must be a date as YYYY-MM-DD.") from None


async def usage(tx: Tx, account_id: str, first: date, last: date, group_by: str) -> Usage:
    """The account's usage over ``first``..``last`` (UTC days, inclusive), one row per group."""
    if group_by not in GROUPS:
        raise InvalidRequest(f"'group_by' must be one of: {', '.join(GROUPS)}.")
    start = _midnight(first)
    params = {"account_id": account_id, "start": start, "end": _midnight(last) + DAY}
    sql = _USAGE.format(group=_GROUP[tx.dialect][group_by])
    rows = [
        UsageRow(group=_label(group_by, row[0]), **_counts(row[1:]))
        for row in await tx.all(sql, params)
    ]
    total = {name: sum(getattr(row, name) for row in rows) for name in UsageCounts.model_fields}
    return Usage(
        from_=first.isoformat(),
        to=last.isoformat(),
        group_by=group_by,
        rows=rows,
        total=UsageCounts(**total),
    )


def _midnight(day: date) -> float:
    return datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()


def _label(group_by: str, value: Any) -> str:
    if group_by == "day":
        return (date(1970, 1, 1) + timedelta(days=int(value))).isoformat()
    return str(value)


def _counts(row: tuple[Any, ...]) -> dict[str, int]:
    created, completed, failed, charged, refunded = (int(value) for value in row)
    return {
        "tasks_created": created,
        "tasks_completed": completed,
        "tasks_failed": failed,
        "credits_charged": charged,
        "credits_refunded": refunded,
        "credits_net": charged - refunded,
    }

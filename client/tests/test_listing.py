"""tasks(), usage() and cancel() on the wire, against a scripted server with the reference's wire
format: the queries they send and the answers they read. The same against a real imagegate:
test_client.py, test_async_client.py."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from imagegate_client import (
    AsyncClient,
    Client,
    InvalidRequestError,
    Usage,
    UsageCounts,
    UsageRow,
)
from sdk_support import Reply, WireServer, error_reply, success, task_json


def page(ids: list[str], cursor: str | None) -> Reply:
    tasks = b",".join(task_json(task_id=task_id) for task_id in ids)
    # A last page leaves next_cursor out here: a server that drops null fields does.
    tail = f',"next_cursor":"{cursor}"' if cursor else ""
    return Reply(200, success(b'{"tasks":[' + tasks + b"]" + tail.encode() + b"}"))


def test_tasks_follows_next_cursor_page_by_page() -> None:
    with WireServer(
        [page(["t5", "t4"], "c2"), page(["t3", "t2"], "c3"), page(["t1"], None)]
    ) as wire:
        with Client(base_url=wire.base_url, api_key="sk-x") as client:
            listed = client.tasks(
                status="completed", created_after=100.9, created_before=200.5, page_size=2
            )
            assert next(listed).id == "t5"
            assert len(wire.seen) == 1  # pages are fetched as the iteration needs them
            assert [task.id for task in listed] == ["t4", "t3", "t2", "t1"]
    bounds = {"status": "completed", "created_after": "100", "created_before": "201"}
    assert [(seen.path, seen.query) for seen in wire.seen] == [
        ("/v1/tasks", {"limit": "2", **bounds}),
        ("/v1/tasks", {"limit": "2", **bounds, "cursor": "c2"}),
        ("/v1/tasks", {"limit": "2", **bounds, "cursor": "c3"}),
    ]


def test_tasks_takes_datetimes_and_sends_only_what_is_given() -> None:
    moment = datetime(2026, 12, 1, 12, 0, 0, 500000, tzinfo=UTC)
    with WireServer([page([], None)]) as wire:
        with Client(base_url=wire.base_url, api_key="sk-x") as client:
            assert list(client.tasks()) == []
            assert list(client.tasks(created_after=moment, created_before=moment)) == []
    assert wire.seen[0].query == {"limit": "20"}
    seconds = int(moment.timestamp())
    assert wire.seen[1].query == {
        "limit": "20", "created_after": str(seconds), "created_before": str(seconds + 1),
    }  # fmt: skip


def test_a_bad_page_size_is_the_servers_to_refuse() -> None:
    refused = error_reply(400, "invalid_request", "invalid_request_error")
    with WireServer([refused]) as wire, Client(base_url=wire.base_url, api_key="sk-x") as client:
        with pytest.raises(InvalidRequestError):
            list(client.tasks(page_size=500))
    assert wire.seen[0].query == {"limit": "500"}


USAGE = {
    "from": "2026-12-01",
    "to": "2026-12-03",
    "group_by": "speed",
    "rows": [
        {"group": "TURBO", "tasks_created": 3, "tasks_completed": 2, "tasks_failed": 1,
         "credits_charged": 48, "credits_refunded": 16, "credits_net": 32},
        {"group": "QUALITY", "tasks_created": 1, "tasks_completed": 1, "tasks_failed": 0,
         "credits_charged": 44, "credits_refunded": 0, "credits_net": 44},
    ],
    "total": {"tasks_created": 4, "tasks_completed": 3, "tasks_failed": 1,
              "credits_charged": 92, "credits_refunded": 16, "credits_net": 76},
}  # fmt: skip


def test_usage_sends_utc_days_and_reads_the_rows() -> None:
    with WireServer([Reply(200, success(USAGE))]) as wire:
        with Client(base_url=wire.base_url, api_key="sk-x") as client:
            usage = client.usage(from_=date(2026, 12, 1), to="2026-12-03", group_by="speed")
            client.usage()
            late = datetime(2026, 12, 1, 23, 30, tzinfo=timezone(timedelta(hours=-2)))
            client.usage(from_=late, to=datetime(2026, 12, 3, 8, 0))
    assert isinstance(usage, Usage)
    assert (usage.from_, usage.to, usage.group_by) == (
        date(2026, 12, 1),
        date(2026, 12, 3),
        "speed",
    )
    assert usage.rows[0] == UsageRow(
        group="TURBO", tasks_created=3, tasks_completed=2, tasks_failed=1,
        credits_charged=48, credits_refunded=16, credits_net=32,
    )  # fmt: skip
    assert usage.total == UsageCounts(**USAGE["total"])  # type: ignore[arg-type]
    assert json.loads(json.dumps(usage.model_dump(mode="json", by_alias=True))) == USAGE
    assert [seen.query for seen in wire.seen] == [
        {"from": "2026-12-01", "to": "2026-12-03", "group_by": "speed"},
        {"group_by": "day"},
        {
            "from": "2026-12-02",
            "to": "2026-12-03",
            "group_by": "day",
        },  # 23:30 at -2 h: UTC next day
    ]


def test_cancel_posts_and_reads_the_bare_task() -> None:
    with WireServer([Reply(200, task_json("failed"))]) as wire:
        with Client(base_url=wire.base_url, api_key="sk-x") as client:
            task = client.cancel("t/1")
    assert task.status == "failed"
    assert task.error is not None
    assert task.error.code == "cancelled"
    [request] = wire.seen
    assert (request.method, request.path, request.body) == ("POST", "/v1/tasks/t%2F1/cancel", b"")


async def test_the_async_tasks_usage_and_cancel() -> None:
    replies = [
        page(["t2"], "c2"),
        page(["t1"], None),
        Reply(200, success(USAGE)),
        Reply(200, task_json("failed")),
    ]
    with WireServer(replies) as wire:
        async with AsyncClient(base_url=wire.base_url, api_key="sk-x") as client:
            ids = [task.id async for task in client.tasks(status="pending", page_size=1)]
            usage = await client.usage(group_by="speed")
            cancelled = await client.cancel("t1")
    assert ids == ["t2", "t1"]
    assert wire.seen[1].query == {"limit": "1", "status": "pending", "cursor": "c2"}
    assert usage.total.credits_net == 76
    assert wire.seen[2].query == {"group_by": "speed"}
    assert cancelled.status == "failed"
    assert (wire.seen[3].method, wire.seen[3].path) == ("POST", "/v1/tasks/t1/cancel")

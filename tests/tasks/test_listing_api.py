"""GET /v1/tasks (an account's tasks, newest first, in stable pages) and GET /v1/usage (its
tasks and credits by UTC day, key or speed), as a client sees them over HTTP."""

from __future__ import annotations

import asyncio
import base64
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest

from harness import Account, Server
from imagegate.keys.service import create_key

FAIL = "a sign [simulate:upstream_error]"
PRICES = {"TURBO": 16, "BALANCED": 28, "QUALITY": 44}
COUNTS = (
    "tasks_created",
    "tasks_completed",
    "tasks_failed",
    "credits_charged",
    "credits_refunded",
    "credits_net",
)


def assert_invalid(response: httpx.Response) -> str:
    """The reference's error envelope for a bad request; returns its message."""
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    assert list(body) == ["error"]
    assert list(body["error"]) == ["code", "message", "type"]
    assert body["error"]["code"] == "invalid_request"
    assert body["error"]["type"] == "invalid_request_error"
    message: str = body["error"]["message"]
    assert message
    return message


async def tasks_page(server: Server, account: Account, **params: Any) -> dict[str, Any]:
    """``data`` of a GET /v1/tasks that must succeed."""
    response = await server.http.get("/v1/tasks", params=params, headers=account.headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    assert list(body) == ["code", "msg", "data"]
    assert (body["code"], body["msg"]) == (200, "success")
    assert list(body["data"]) == ["tasks", "next_cursor"]  # next_cursor even when null
    data: dict[str, Any] = body["data"]
    return data


async def listed_ids(server: Server, account: Account, **params: Any) -> list[str]:
    """Every task the filter lists, following next_cursor to the end."""
    ids: list[str] = []
    cursor: str | None = None
    while True:
        page = await tasks_page(server, account, **params, **({"cursor": cursor} if cursor else {}))
        ids += [task["id"] for task in page["tasks"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return ids


async def create_ids(server: Server, account: Account, count: int, **fields: Any) -> list[str]:
    """``count`` tasks created at once; their ids."""
    answers = await asyncio.gather(*(server.create(account, **fields) for _ in range(count)))
    for answer in answers:
        assert answer.status_code == 200, answer.text
    return [answer.json()["data"]["taskId"] for answer in answers]


async def second_key(server: Server, account: Account) -> Account:
    """Another key of ``account``'s account."""
    async with server.services.db.transaction() as session:
        key, plaintext = await create_key(
            session, server.services.hasher, account.id, "second", server.clock.now()
        )
    return Account(id=account.id, key=plaintext, key_id=key.id)


def millisecond(task_id: str) -> int:
    """The creation millisecond a task id (UUID version 7) carries."""
    return uuid.UUID(task_id).int >> 80


# --- GET /v1/tasks -------------------------------------------------------------------------


async def test_paging_through_250_tasks_while_50_more_are_created_returns_each_once(
    server: Server,
) -> None:
    await server.stop_workers()  # the tasks stay pending: this is about listing them
    account = await server.account(credits=100_000)
    batches: list[list[str]] = []
    for _ in range(10):
        batches.append(await create_ids(server, account, 25, rendering_speed="TURBO"))
        server.clock.advance(1)  # each batch a later second than the one before
    created = [task_id for batch in batches for task_id in batch]
    assert len(set(created)) == 250

    seen: list[dict[str, Any]] = []
    newer: list[str] = []
    pages = 0
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 7, **({"cursor": cursor} if cursor else {})}
        # Created while the page is being read; not during the first page, whose newest-first
        # start is "now" and may rightly include a task committed just before it is read.
        more = 2 if cursor is not None and len(newer) < 50 else 0
        page, *extra = await asyncio.gather(
            tasks_page(server, account, **params),
            *([create_ids(server, account, more, rendering_speed="TURBO")] if more else []),
        )
        for ids in extra:
            newer += ids
        pages += 1
        assert 1 <= len(page["tasks"]) <= 7
        seen += page["tasks"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert len(page["tasks"]) == 7
        assert isinstance(cursor, str)
    assert len(newer) == 50

    ids = [task["id"] for task in seen]
    assert len(ids) == len(set(ids)), "a task was listed twice"
    assert set(ids) == set(created), "a task was skipped, or a newer one crept in"
    assert pages == 36  # 35 pages of 7, then 5
    # Newest first: the batches in reverse, and within them by creation time.
    shown = [task["created_at"] for task in seen]
    assert shown == sorted(shown, reverse=True)
    assert [millisecond(i) for i in ids] == sorted(map(millisecond, ids), reverse=True)
    offset = 0
    for batch in reversed(batches):
        assert set(ids[offset : offset + len(batch)]) == set(batch)
        offset += len(batch)
    # Each listed the way GET /v1/tasks/{taskId} shows it.
    for task in seen[:3] + seen[-3:]:
        assert task == await server.task(account, task["id"])
        assert list(task) == ["id", "status", "model", "created_at"]
        assert task["status"] == "pending"
    # A fresh first page starts with the tasks created meanwhile.
    first = await tasks_page(server, account, limit=50)
    assert {task["id"] for task in first["tasks"]} == set(newer)
    assert first["next_cursor"] is not None
    assert sorted(await listed_ids(server, account, limit=100)) == sorted(created + newer)


async def test_a_page_that_ends_exactly_at_the_last_task_has_a_null_cursor(
    server: Server,
) -> None:
    account = await server.account()
    assert await tasks_page(server, account) == {"tasks": [], "next_cursor": None}
    await server.stop_workers()
    ids = []
    for _ in range(3):
        ids += await create_ids(server, account, 1)
    newest_first = ids[::-1]
    whole = await tasks_page(server, account, limit=3)
    assert [task["id"] for task in whole["tasks"]] == newest_first
    assert whole["next_cursor"] is None
    first = await tasks_page(server, account, limit=2)
    assert [task["id"] for task in first["tasks"]] == newest_first[:2]
    last = await tasks_page(server, account, limit=2, cursor=first["next_cursor"])
    assert [task["id"] for task in last["tasks"]] == newest_first[2:]
    assert last["next_cursor"] is None
    raw = await server.http.get(
        "/v1/tasks", params={"limit": 2, "cursor": first["next_cursor"]}, headers=account.headers
    )
    assert b'"next_cursor":null' in raw.content.replace(b" ", b"")
    default = await tasks_page(server, account)  # 20 by default
    assert len(default["tasks"]) == 3


async def test_filters_by_status_and_creation_time_in_whole_seconds(server: Server) -> None:
    account = await server.account(credits=1000)
    completed = await server.run(account)
    server.clock.advance(10)
    failed = await server.run(account, prompt=FAIL)
    server.clock.advance(10)
    await server.stop_workers()
    pending = await server.task(account, (await create_ids(server, account, 1))[0])
    assert (completed["status"], failed["status"], pending["status"]) == (
        "completed",
        "failed",
        "pending",
    )
    c, f, p = completed["id"], failed["id"], pending["id"]

    everything = await tasks_page(server, account)
    assert everything["tasks"] == [pending, failed, completed]  # as GET /v1/tasks/{id} shows
    assert everything["next_cursor"] is None

    for status, expected in [
        ("completed", [c]),
        ("failed", [f]),
        ("pending", [p]),
        ("processing", []),
    ]:
        assert await listed_ids(server, account, status=status) == expected, status

    # created_after / created_before are exclusive, against the created_at that is shown.
    t_c, t_f, t_p = completed["created_at"], failed["created_at"], pending["created_at"]
    for params, expected in [
        ({"created_after": t_c}, [p, f]),
        ({"created_after": t_c - 1}, [p, f, c]),
        ({"created_after": t_f}, [p]),
        ({"created_after": t_p}, []),
        ({"created_before": t_p}, [f, c]),
        ({"created_before": t_p + 1}, [p, f, c]),
        ({"created_before": t_c}, []),
        ({"created_before": t_c + 1}, [c]),
        ({"created_after": t_c, "created_before": t_p}, [f]),
        ({"created_after": t_f - 1, "created_before": t_f + 1}, [f]),
        ({"created_after": t_p, "created_before": t_c}, []),
        ({"created_after": 0}, [p, f, c]),
        ({"created_after": t_c, "status": "failed"}, [f]),
        ({"created_after": t_f, "status": "failed"}, []),
        ({"created_before": t_p, "status": "pending"}, []),
    ]:
        assert await listed_ids(server, account, **params) == expected, params
        assert await listed_ids(server, account, limit=1, **params) == expected, params


async def test_another_accounts_tasks_never_appear(server: Server) -> None:
    alice, bob = await server.account(), await server.account()
    await server.stop_workers()
    alices = await create_ids(server, alice, 3)
    bobs = await create_ids(server, bob, 2)
    more_alices = await create_ids(server, alice, 2)
    assert sorted(await listed_ids(server, alice, limit=2)) == sorted(alices + more_alices)
    assert sorted(await listed_ids(server, bob, limit=1)) == sorted(bobs)
    for status in ("pending", "completed"):
        assert set(await listed_ids(server, bob, status=status)) <= set(bobs)
    # Alice's cursor is a place in time, not a key to her tasks.
    alice_page = await tasks_page(server, alice, limit=1)
    with_her_cursor = await tasks_page(server, bob, cursor=alice_page["next_cursor"])
    assert {task["id"] for task in with_her_cursor["tasks"]} <= set(bobs)
    # A second key of the same account sees the account's tasks.
    alice_again = await second_key(server, alice)
    assert sorted(await listed_ids(server, alice_again)) == sorted(alices + more_alices)


def _cursor(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


async def test_bad_list_parameters_are_400_with_the_envelope(server: Server) -> None:
    account = await server.account()
    await server.stop_workers()
    await create_ids(server, account, 2)
    good = await tasks_page(server, account, limit=1)
    assert good["next_cursor"] is not None
    some_id = str(uuid.uuid4())
    bad: list[dict[str, Any]] = [
        {"limit": 0},
        {"limit": 101},
        {"limit": -1},
        {"limit": "x"},
        {"limit": "1.5"},
        {"limit": ""},
        {"status": "done"},
        {"status": "PENDING"},
        {"status": ""},
        {"created_after": "yesterday"},
        {"created_after": -1},
        {"created_after": "1.5"},
        {"created_before": "10000000000000000000000"},
        {"created_before": 253_402_300_800},  # after 9999-12-31
        {"cursor": "not-a-cursor"},
        {"cursor": "!!!"},
        {"cursor": good["next_cursor"] + "x"},
        {"cursor": good["next_cursor"][:-4]},
        {"cursor": "A" * 513},
        {"cursor": _cursor(f"o:1700000000.5:{some_id}:extra")},
        {"cursor": _cursor(f"x:1700000000.5:{some_id}")},
        {"cursor": _cursor("o:1700000000.5:not-a-uuid")},
        {"cursor": _cursor(f"o:nan:{some_id}")},
        {"cursor": _cursor(f"o:inf:{some_id}")},
        {"cursor": _cursor(f"o:soon:{some_id}")},
        {"cursor": base64.urlsafe_b64encode(b"\xff\xfe:1:2").decode()},
    ]
    for params in bad:
        response = await server.http.get("/v1/tasks", params=params, headers=account.headers)
        message = assert_invalid(response)
        assert message != "Invalid request.", params
    # The bounds themselves are fine.
    assert len((await tasks_page(server, account, limit=1))["tasks"]) == 1
    assert len((await tasks_page(server, account, limit=100))["tasks"]) == 2
    assert (await tasks_page(server, account, created_before=253_402_300_799))["tasks"]
    # And without a key, nothing is listed.
    response = await server.http.get("/v1/tasks")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"


# --- GET /v1/usage -------------------------------------------------------------------------


async def usage(server: Server, account: Account, **params: Any) -> dict[str, Any]:
    """``data`` of a GET /v1/usage that must succeed."""
    response = await server.http.get("/v1/usage", params=params, headers=account.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert (body["code"], body["msg"]) == (200, "success")
    assert list(body["data"]) == ["from", "to", "group_by", "rows", "total"]
    data: dict[str, Any] = body["data"]
    for counts in [*data["rows"], data["total"]]:
        assert counts["credits_net"] == counts["credits_charged"] - counts["credits_refunded"]
    return data


def _day_of(task: dict[str, Any]) -> str:
    return datetime.fromtimestamp(task["created_at"], UTC).date().isoformat()


def _row(
    group: str,
    created: int,
    completed: int,
    failed: int,
    charged: int,
    refunded: int,
) -> dict[str, Any]:
    return {
        "tasks_created": created,
        "tasks_completed": completed,
        "tasks_failed": failed,
        "credits_charged": charged,
        "credits_refunded": refunded,
        "credits_net": charged - refunded,
        "group": group,
    }


def _without_group(row: dict[str, Any]) -> dict[str, Any]:
    return {name: row[name] for name in COUNTS}


def _today(server: Server) -> date:
    return datetime.fromtimestamp(server.clock.now(), UTC).date()


async def test_usage_by_day_key_and_speed_counts_failures_and_their_refunds(
    server: Server,
) -> None:
    first_key = await server.account(credits=1000)
    other_key = await second_key(server, first_key)
    stranger = await server.account(credits=1000)
    empty = await usage(server, first_key)
    assert (empty["rows"], empty["total"]) == ([], _without_group(_row("", 0, 0, 0, 0, 0)))

    balanced = await server.run(first_key)  # 28, completed
    turbo_failed = await server.run(first_key, prompt=FAIL, rendering_speed="TURBO")  # refunded
    await server.run(stranger, rendering_speed="QUALITY")  # another account's: never counted
    server.clock.advance(86_400)  # a day later
    quality = await server.run(other_key, rendering_speed="QUALITY")  # 44, completed
    await server.stop_workers()
    pending_id = (await create_ids(server, other_key, 1, rendering_speed="TURBO"))[0]
    pending = await server.task(other_key, pending_id)  # 16, charged, still pending
    assert [t["status"] for t in (balanced, turbo_failed, quality, pending)] == [
        "completed",
        "failed",
        "completed",
        "pending",
    ]
    assert turbo_failed["error"]["code"] == "upstream_error"

    total = _without_group(_row("", 4, 2, 1, 28 + 16 + 44 + 16, 16))
    spent = 1000 - (await server.ledger(first_key))[0]
    assert total["credits_net"] == spent == 28 + 44 + 16  # what the account's credits show

    # By day (the default), on the UTC day each task was created.
    days: dict[str, list[dict[str, Any]]] = {}
    for task in (balanced, turbo_failed, quality, pending):
        days.setdefault(_day_of(task), []).append(task)
    assert len(days) == 2
    earlier, later = sorted(days)
    by_day = await usage(server, first_key)
    assert by_day["group_by"] == "day"
    assert by_day["rows"] == [
        _row(earlier, 2, 1, 1, 28 + 16, 16),
        _row(later, 2, 1, 0, 44 + 16, 0),
    ]
    assert by_day["total"] == total
    assert by_day["to"] in {_today(server).isoformat(), later}
    assert date.fromisoformat(by_day["to"]) - date.fromisoformat(by_day["from"]) == timedelta(29)
    assert await usage(server, first_key, group_by="day") == by_day
    assert await usage(server, other_key) == by_day  # the account's, whichever key asks

    # One day, or days without tasks.
    only_later = await usage(server, first_key, **{"from": later, "to": later})
    assert (only_later["from"], only_later["to"]) == (later, later)
    assert only_later["rows"] == [_row(later, 2, 1, 0, 60, 0)]
    assert only_later["total"] == _without_group(only_later["rows"][0])
    only_earlier = await usage(server, first_key, to=earlier)
    assert only_earlier["rows"] == [_row(earlier, 2, 1, 1, 44, 16)]
    day_before = date.fromisoformat(earlier) - timedelta(1)
    long_ago = await usage(
        server,
        first_key,
        **{"from": (day_before - timedelta(365)).isoformat(), "to": day_before.isoformat()},
    )
    assert long_ago["rows"] == []
    assert long_ago["total"] == _without_group(_row("", 0, 0, 0, 0, 0))

    # By key: each key's own tasks.
    by_key = await usage(server, first_key, group_by="key")
    assert by_key["group_by"] == "key"
    assert sorted(by_key["rows"], key=lambda row: row["group"]) == sorted(
        [
            _row(first_key.key_id, 2, 1, 1, 44, 16),
            _row(other_key.key_id, 2, 1, 0, 60, 0),
        ],
        key=lambda row: row["group"],
    )
    assert by_key["total"] == total

    # By rendering speed.
    by_speed = await usage(server, first_key, group_by="speed")
    assert sorted(by_speed["rows"], key=lambda row: row["group"]) == [
        _row("BALANCED", 1, 1, 0, 28, 0),
        _row("QUALITY", 1, 1, 0, 44, 0),
        _row("TURBO", 2, 0, 1, 32, 16),
    ]
    assert by_speed["total"] == total

    # The stranger sees only their own.
    theirs = await usage(server, stranger, group_by="speed")
    assert theirs["rows"] == [_row("QUALITY", 1, 1, 0, 44, 0)]


async def test_a_cancelled_task_shows_as_failed_and_refunded(server: Server) -> None:
    account = await server.account(credits=1000)
    await server.stop_workers()
    task_id = (await create_ids(server, account, 1))[0]
    cancelled = await server.http.post(f"/v1/tasks/{task_id}/cancel", headers=account.headers)
    assert cancelled.status_code == 200, cancelled.text
    task = await server.task(account, task_id)
    found = await usage(server, account, group_by="speed")
    assert found["rows"] == [_row("BALANCED", 1, 0, 1, 28, 28)]
    assert (await usage(server, account))["rows"] == [_row(_day_of(task), 1, 0, 1, 28, 28)]
    assert await listed_ids(server, account, status="failed") == [task_id]


@pytest.mark.parametrize(
    "params",
    [
        {"from": "2024-02-30", "to": "2024-03-01"},
        {"from": "2024-1-01", "to": "2024-01-31"},
        {"from": "20240101", "to": "2024-01-31"},
        {"from": "yesterday"},
        {"to": "2024-01-31T00:00"},
        {"to": "2024-13-01"},
        {"to": "0000-01-01"},
        {"to": ""},
        {"from": "2024-03-02", "to": "2024-03-01"},
        {"from": "2023-01-01", "to": "2024-01-02"},  # 367 days
        {"from": "2000-01-01", "to": "2024-01-01"},
        {"from": "9999-12-31"},  # after today
        {"group_by": "month"},
        {"group_by": "DAY"},
        {"group_by": ""},
    ],
)
async def test_bad_usage_parameters_are_400_with_the_envelope(
    server: Server, params: dict[str, Any]
) -> None:
    account = await server.account()
    response = await server.http.get("/v1/usage", params=params, headers=account.headers)
    assert_invalid(response)


async def test_usage_periods_at_the_edges(server: Server) -> None:
    account = await server.account()
    for params, period in [
        ({"from": "2023-01-01", "to": "2024-01-01"}, ("2023-01-01", "2024-01-01")),  # 366 days
        ({"from": "2024-01-01", "to": "2024-12-31"}, ("2024-01-01", "2024-12-31")),  # leap year
        ({"from": "2024-02-29", "to": "2024-02-29"}, ("2024-02-29", "2024-02-29")),
        ({"from": "0001-01-01", "to": "0001-01-01"}, ("0001-01-01", "0001-01-01")),
        ({"from": "9999-12-31", "to": "9999-12-31"}, ("9999-12-31", "9999-12-31")),
        ({"to": "2024-03-01"}, ("2024-02-01", "2024-03-01")),  # 30 days by default
        ({"to": "0001-01-10"}, ("0001-01-01", "0001-01-10")),  # as many as there are
    ]:
        found = await usage(server, account, **params)
        assert (found["from"], found["to"]) == period, params
        assert found["rows"] == []

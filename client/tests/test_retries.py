"""Retries on 429, 5xx and network errors, honouring Retry-After; create's with one
Idempotency-Key for all its attempts. Against a scripted server with the reference's wire format:
a real imagegate's rate limit window is a minute long, too long to sleep through in a test."""

from __future__ import annotations

import re

import pytest

from imagegate_client import (
    AsyncClient,
    Client,
    InternalServerError,
    InvalidRequestError,
    RateLimitError,
    UpstreamError,
)
from sdk_support import (
    DROPPED,
    TASK,
    Reply,
    Seen,
    WireServer,
    error_reply,
    success,
    task_json,
)

RATE_LIMITED = error_reply(429, "rate_limit_exceeded", "rate_limit_error", **{"Retry-After": "1"})
UNAVAILABLE = error_reply(503, "upstream_error", "upstream_error")
CREATED = Reply(200, success({"taskId": "t1"}))
SERVER_ERROR = error_reply(500, "internal_error", "api_error")


def gaps(wire: WireServer) -> list[float]:
    return [later.at - earlier.at for earlier, later in zip(wire.seen, wire.seen[1:], strict=False)]


def test_a_429_is_retried_after_its_retry_after() -> None:
    with WireServer([RATE_LIMITED, Reply(200, TASK)]) as wire:
        with Client(base_url=wire.base_url, api_key="sk-x") as client:
            task = client.get("t1")
    assert task.status == "completed"
    assert task.urls == ["https://files.example/a.png"]
    assert [seen.path for seen in wire.seen] == ["/v1/tasks/t1"] * 2
    assert 1.0 <= gaps(wire)[0] < 3.0


async def test_the_async_client_honours_retry_after_too() -> None:
    credits = Reply(200, b'{"code":200,"msg":"success","data":{"credits":7}}')
    with WireServer([RATE_LIMITED, credits]) as wire:
        async with AsyncClient(base_url=wire.base_url, api_key="sk-x") as client:
            assert (await client.credits()).credits == 7
    assert len(wire.seen) == 2
    assert 1.0 <= gaps(wire)[0] < 3.0


def test_5xx_is_retried_with_backoff_up_to_max_retries() -> None:
    with WireServer([UNAVAILABLE, UNAVAILABLE, Reply(200, TASK)]) as wire:
        with Client(base_url=wire.base_url, api_key="sk-x") as client:
            assert client.get("t1").status == "completed"
    assert len(wire.seen) == 3
    assert all(0.3 <= gap < 3.0 for gap in gaps(wire))  # about 0.5 s, then about 1 s
    with WireServer([UNAVAILABLE]) as wire:
        with Client(base_url=wire.base_url, api_key="sk-x", max_retries=1) as client:
            with pytest.raises(UpstreamError):
                client.credits()
    assert len(wire.seen) == 2


def keys(seen: list[Seen]) -> list[str | None]:
    return [request.headers.get("idempotency-key") for request in seen]


@pytest.mark.parametrize(
    "failure",
    [
        UNAVAILABLE,
        SERVER_ERROR,
        DROPPED,  # no response at all: the task may or may not have been made
        RATE_LIMITED,
    ],
    ids=["503", "500", "dropped", "429"],
)
def test_create_is_retried_with_the_same_idempotency_key(failure: Reply) -> None:
    with WireServer([failure, CREATED]) as wire:
        with Client(base_url=wire.base_url, api_key="sk-x") as client:
            assert client.create("a cat") == "t1"
    assert [(seen.method, seen.path) for seen in wire.seen] == [
        ("POST", "/v1/images/generations")
    ] * 2
    first, again = keys(wire.seen)
    assert first is not None
    assert re.fullmatch(r"[0-9a-f]{32}", first)
    assert again == first
    assert wire.seen[0].body == wire.seen[1].body


def test_each_create_has_its_own_key_unless_the_caller_gives_one() -> None:
    with WireServer([CREATED]) as wire, Client(base_url=wire.base_url, api_key="sk-x") as client:
        client.create("a cat")
        client.create("a cat")
        client.create("a cat", idempotency_key="order-42")
        client.create("a cat", idempotency_key="order-42")
    first, second, *given = keys(wire.seen)
    assert first != second
    assert given == ["order-42", "order-42"]
    assert b"order-42" not in wire.seen[2].body  # a header, not a field of the body


def test_create_is_not_retried_on_a_client_error_or_past_max_retries() -> None:
    refused = error_reply(400, "invalid_request", "invalid_request_error")
    with WireServer([refused, CREATED]) as wire:
        with Client(base_url=wire.base_url, api_key="sk-x") as client:
            with pytest.raises(InvalidRequestError):
                client.create("a cat")
    assert len(wire.seen) == 1
    with WireServer([UNAVAILABLE, CREATED]) as wire:
        with Client(base_url=wire.base_url, api_key="sk-x", max_retries=0) as client:
            with pytest.raises(UpstreamError):
                client.create("a cat")
    assert len(wire.seen) == 1
    with WireServer([UNAVAILABLE, UNAVAILABLE, SERVER_ERROR, CREATED]) as wire:
        with Client(base_url=wire.base_url, api_key="sk-x") as client:
            with pytest.raises(InternalServerError):
                client.create("a cat")
    assert len(wire.seen) == 3  # max_retries=2
    assert len(set(keys(wire.seen))) == 1


async def test_the_async_create_is_retried_with_the_same_key_too() -> None:
    with WireServer([DROPPED, UNAVAILABLE, CREATED]) as wire:
        async with AsyncClient(base_url=wire.base_url, api_key="sk-x") as client:
            assert await client.create("a cat", idempotency_key="k-1") == "t1"
    assert keys(wire.seen) == ["k-1"] * 3


def test_a_cancel_whose_answer_was_lost_finds_the_task_cancelled() -> None:
    # The first cancel worked but its answer was lost; the retry finds the task final (400).
    final = error_reply(400, "invalid_request", "invalid_request_error")
    cancelled = Reply(200, task_json("failed"))
    with WireServer([DROPPED, final, cancelled]) as wire:
        with Client(base_url=wire.base_url, api_key="sk-x") as client:
            task = client.cancel("t1")
    assert task.error is not None
    assert task.error.code == "cancelled"
    assert [(seen.method, seen.path) for seen in wire.seen] == [
        ("POST", "/v1/tasks/t1/cancel"),
        ("POST", "/v1/tasks/t1/cancel"),
        ("GET", "/v1/tasks/t1"),
    ]
    # Not so when the task ended otherwise, or on the first try.
    for replies, calls in (([DROPPED, final, Reply(200, TASK)], 3), ([final, cancelled], 1)):
        with WireServer(replies) as wire:
            with Client(base_url=wire.base_url, api_key="sk-x") as client:
                with pytest.raises(InvalidRequestError):
                    client.cancel("t1")
        assert len(wire.seen) == calls


def test_a_retry_after_beyond_the_cap_is_raised_at_once() -> None:
    long_wait = error_reply(
        429, "rate_limit_exceeded", "rate_limit_error", **{"Retry-After": "120"}
    )
    with WireServer([long_wait, Reply(200, TASK)]) as wire:
        with Client(base_url=wire.base_url, api_key="sk-x") as client:
            with pytest.raises(RateLimitError) as raised:
                client.get("t1")
    assert raised.value.retry_after == 120
    assert len(wire.seen) == 1


def test_wait_rides_out_transient_errors_until_the_task_finishes() -> None:
    processing = Reply(200, TASK.replace(b'"completed"', b'"processing"', 1))
    replies = [processing, UNAVAILABLE, RATE_LIMITED, Reply(200, TASK)]
    with WireServer(replies) as wire:
        with Client(base_url=wire.base_url, api_key="sk-x", max_retries=0) as client:
            statuses: list[str] = []
            task = client.wait("t1", timeout=30, on_poll=lambda t: statuses.append(t.status))
    assert task.status == "completed"
    assert statuses == ["processing", "completed"]
    assert len(wire.seen) == 4
    assert gaps(wire)[2] >= 1.0

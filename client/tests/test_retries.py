"""Retries of safe calls on 429, 5xx and network errors, honouring Retry-After; create is never
retried. Against a scripted server with the reference's wire format: a real imagegate's rate
limit window is a minute long, too long to sleep through in a test."""

from __future__ import annotations

import pytest

from imagegate_client import (
    AsyncClient,
    Client,
    InternalServerError,
    RateLimitError,
    UpstreamError,
)
from sdk_support import TASK, Reply, WireServer, error_reply

RATE_LIMITED = error_reply(429, "rate_limit_exceeded", "rate_limit_error", **{"Retry-After": "1"})
UNAVAILABLE = error_reply(503, "upstream_error", "upstream_error")
CREATED = Reply(200, b'{"code":200,"msg":"success","data":{"taskId":"t1"}}')


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


def test_create_is_never_retried() -> None:
    # A retry after a lost response could create, and charge, a second task.
    for reply in (UNAVAILABLE, RATE_LIMITED, error_reply(500, "internal_error", "api_error")):
        with WireServer([reply, CREATED]) as wire:
            with Client(base_url=wire.base_url, api_key="sk-x") as client:
                with pytest.raises((UpstreamError, RateLimitError, InternalServerError)):
                    client.create("a cat")
        assert [(seen.method, seen.path) for seen in wire.seen] == [
            ("POST", "/v1/images/generations")
        ]


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

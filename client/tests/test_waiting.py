"""Waiting for a task, against a scripted server with the reference's wire format: wait()'s long
polls (?wait=N), generate()'s create that waits (Prefer: wait=N), and events()' server-sent
events, byte by byte. The same against a real imagegate: test_client.py, test_async_client.py."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from imagegate_client import (
    APIConnectionError,
    AsyncClient,
    Client,
    ImagegateError,
    Task,
    TaskNotFoundError,
    WaitTimeoutError,
)
from imagegate_client._base import EventStream
from sdk_support import (
    EVENT_STREAM,
    Reply,
    WireServer,
    error_reply,
    status_event,
    success,
    task_json,
)

PENDING, PROCESSING, COMPLETED = (task_json(s) for s in ("pending", "processing", "completed"))
CREATED = Reply(200, success({"taskId": "t1"}))


def waited(task: bytes) -> Reply:
    """The answer to a create sent with Prefer: wait=N."""
    body = success(b'{"taskId":"t1","task":' + task + b"}")
    return Reply(200, body, {"Preference-Applied": "wait=60"})


def collect(events: Iterator[Task], statuses: list[str]) -> None:
    statuses.extend(task.status for task in events)


def gaps(wire: WireServer) -> list[float]:
    return [later.at - earlier.at for earlier, later in zip(wire.seen, wire.seen[1:], strict=False)]


# wait(): long polls


def test_wait_long_polls_for_the_time_left_and_polls_again_at_once() -> None:
    # The server holds the first poll 0.6 s: longer than the client's timeout, which a long
    # poll's own timeout covers.
    held = Reply(200, PROCESSING, delay=0.6)
    with WireServer([held, Reply(200, COMPLETED)]) as wire:
        with Client(base_url=wire.base_url, api_key="sk-x", timeout=0.5) as client:
            statuses: list[str] = []
            task = client.wait("t1", on_poll=lambda t: statuses.append(t.status))
    assert task.status == "completed"
    assert statuses == ["processing", "completed"]  # the held poll did not time out
    assert [(seen.path, seen.query) for seen in wire.seen] == [("/v1/tasks/t1", {"wait": "60"})] * 2
    assert 0.6 <= gaps(wire)[0] < 1.0  # no sleep after a long poll
    with WireServer([Reply(200, COMPLETED)]) as wire:
        with Client(base_url=wire.base_url, api_key="sk-x") as client:
            client.wait("t1", timeout=30)
    assert wire.seen[0].query["wait"] in ("29", "30")  # never past the deadline


def test_wait_paces_a_server_that_answers_long_polls_at_once() -> None:
    replies = [Reply(200, PROCESSING)] * 3 + [Reply(200, COMPLETED)]
    with WireServer(replies) as wire:
        with Client(base_url=wire.base_url, api_key="sk-x") as client:
            assert client.wait("t1", timeout=30).status == "completed"
    assert len(wire.seen) == 4
    first, second, third = gaps(wire)
    assert first >= 0.45  # 0.5 s, then backing off as a sleep-poll does
    assert second >= 0.7
    assert third >= 1.05


def test_wait_sends_no_wait_with_less_than_a_second_left() -> None:
    with WireServer([Reply(200, PROCESSING)]) as wire:
        with Client(base_url=wire.base_url, api_key="sk-x") as client:
            started = time.monotonic()
            with pytest.raises(WaitTimeoutError) as timed_out:
                client.wait("t1", timeout=0.8)
    assert time.monotonic() - started < 2.0
    assert timed_out.value.task is not None
    assert timed_out.value.task.status == "processing"
    assert wire.seen
    assert all("wait" not in seen.query for seen in wire.seen)


async def test_the_async_wait_long_polls_too() -> None:
    with WireServer([Reply(200, PROCESSING, delay=0.6), Reply(200, COMPLETED)]) as wire:
        async with AsyncClient(base_url=wire.base_url, api_key="sk-x", timeout=0.5) as client:
            statuses: list[str] = []
            await client.wait("t1", timeout=10, on_poll=lambda t: statuses.append(t.status))
    assert statuses == ["processing", "completed"]
    assert [seen.query for seen in wire.seen] == [{"wait": "9"}] * 2


# generate(): a create that waits


def test_generate_asks_the_create_to_wait_for_the_task() -> None:
    with WireServer([waited(COMPLETED)]) as wire:
        with Client(base_url=wire.base_url, api_key="sk-x") as client:
            seen: list[Task] = []
            task = client.generate("a cat", on_poll=seen.append)
    assert task.status == "completed"
    assert task.urls == ["https://files.example/a.png"]
    assert seen == [task]
    [create] = wire.seen
    assert (create.method, create.path) == ("POST", "/v1/images/generations")
    assert create.headers["prefer"] == "wait=60"
    assert create.headers["idempotency-key"]


def test_generate_long_polls_a_task_the_create_did_not_see_finish() -> None:
    with WireServer([waited(PROCESSING), Reply(200, COMPLETED)]) as wire:
        with Client(base_url=wire.base_url, api_key="sk-x") as client:
            statuses: list[str] = []
            task = client.generate("a cat", timeout=20, on_poll=lambda t: statuses.append(t.status))
    assert task.status == "completed"
    assert statuses == ["processing", "completed"]
    create, poll = wire.seen
    assert create.headers["prefer"] in ("wait=19", "wait=20")
    assert (poll.method, poll.path) == ("GET", "/v1/tasks/t1")
    assert 1 <= int(poll.query["wait"]) <= 20


def test_generate_with_a_server_that_does_not_wait_or_under_a_second() -> None:
    # The bare {"taskId"} answer of a server that ignores Prefer: wait() takes over.
    with WireServer([CREATED, Reply(200, COMPLETED)]) as wire:
        with Client(base_url=wire.base_url, api_key="sk-x") as client:
            assert client.generate("a cat").status == "completed"
    assert [seen.method for seen in wire.seen] == ["POST", "GET"]
    with WireServer([CREATED, Reply(200, PROCESSING)]) as wire:
        with Client(base_url=wire.base_url, api_key="sk-x") as client:
            with pytest.raises(WaitTimeoutError) as timed_out:
                client.generate("a cat", timeout=0.5)
    assert "prefer" not in wire.seen[0].headers  # not even a second to wait
    assert timed_out.value.timeout == 0.5
    assert any("t1" in note for note in timed_out.value.__notes__)


def test_a_waited_create_is_retried_with_its_key_and_what_is_left_of_the_wait() -> None:
    unavailable = error_reply(503, "upstream_error", "upstream_error")
    with WireServer([unavailable, waited(COMPLETED)]) as wire:
        with Client(base_url=wire.base_url, api_key="sk-x") as client:
            assert client.generate("a cat", timeout=5).status == "completed"
    first, again = wire.seen
    assert first.headers["idempotency-key"] == again.headers["idempotency-key"]
    assert first.headers["prefer"] in ("wait=4", "wait=5")
    assert again.headers["prefer"] in ("wait=3", "wait=4")  # after a backoff of about 0.5 s


async def test_the_async_generate_asks_the_create_to_wait() -> None:
    with WireServer([waited(PROCESSING), Reply(200, COMPLETED)]) as wire:
        async with AsyncClient(base_url=wire.base_url, api_key="sk-x") as client:
            task = await client.generate("a cat")
    assert task.status == "completed"
    assert wire.seen[0].headers["prefer"] == "wait=60"
    assert wire.seen[1].query == {"wait": "60"}


# events(): server-sent events

STREAM = (
    b": a comment first\r\n\r\n"
    + b"event: status\r\ndata: " + PENDING + b"\r\n\r\n"
    + b": keep-alive\n\n"
    + b"retry: 1000\nid: 7\nevent: status\n"
    # data over two lines: joined by a newline, which JSON allows between tokens
    + b"data: " + PROCESSING[:20] + b"\ndata:" + PROCESSING[20:] + b"\n\n"
    + b"event: progress\ndata: {\"percent\": 50}\n\n"  # another type: not a status
    + b"data: " + PROCESSING + b"\n\n"  # no type: a "message", not a status
    + b"event: status\rdata: " + COMPLETED + b"\r\r"
)  # fmt: skip


def test_the_event_stream_decoder_at_every_split() -> None:
    whole = EventStream().feed(STREAM)
    assert [kind for kind, _ in whole] == ["status", "status", "progress", "message", "status"]
    assert whole[1][1] == PROCESSING[:20].decode() + "\n" + PROCESSING[20:].decode()
    for split in range(1, len(STREAM)):
        decoder = EventStream()
        assert decoder.feed(STREAM[:split]) + decoder.feed(STREAM[split:]) == whole, split
    assert EventStream().feed(b"event: status\ndata: x\n") == []  # not ended: not an event
    assert EventStream().feed(b"event: status\n\n") == []  # no data: no event


def test_events_yields_each_status_from_the_stream() -> None:
    pieces = [STREAM[i : i + 7] for i in range(0, len(STREAM), 7)]
    for reply in (
        Reply(200, STREAM, EVENT_STREAM),
        Reply(200, headers=EVENT_STREAM, chunks=pieces),
    ):
        with WireServer([reply]) as wire:
            with Client(base_url=wire.base_url, api_key="sk-x") as client:
                statuses = [task.status for task in client.events("t1")]
        assert statuses == ["pending", "processing", "completed"]
        [request] = wire.seen
        assert (request.method, request.path) == ("GET", "/v1/tasks/t1/events")
        assert request.headers["accept"] == "text/event-stream"
        assert request.headers["authorization"] == "Bearer sk-x"


def test_events_reconnects_after_a_broken_stream_without_repeating_a_state() -> None:
    broken = Reply(200, status_event(PENDING) + status_event(PROCESSING), EVENT_STREAM)
    rest = Reply(200, status_event(PROCESSING) + status_event(COMPLETED), EVENT_STREAM)
    with WireServer([broken, rest]) as wire:
        with Client(base_url=wire.base_url, api_key="sk-x") as client:
            statuses = [task.status for task in client.events("t1")]
    assert statuses == ["pending", "processing", "completed"]
    assert len(wire.seen) == 2
    # A stream that keeps ending without news is given up after max_retries reconnects.
    with WireServer([Reply(200, status_event(PENDING), EVENT_STREAM)]) as wire:
        with Client(base_url=wire.base_url, api_key="sk-x", max_retries=1) as client:
            seen: list[str] = []
            with pytest.raises(APIConnectionError, match="ended before it was final"):
                collect(client.events("t1"), seen)
    assert seen == ["pending"]
    assert len(wire.seen) == 2


def test_events_gives_up_at_its_timeout_while_keep_alives_come() -> None:
    keep_alives = [status_event(PROCESSING)] + [b": keep-alive\n\n"] * 100
    stream = Reply(200, headers=EVENT_STREAM, chunks=keep_alives, chunk_delay=0.05)
    with WireServer([stream]) as wire:
        with Client(base_url=wire.base_url, api_key="sk-x") as client:
            started = time.monotonic()
            seen: list[str] = []
            with pytest.raises(WaitTimeoutError) as timed_out:
                collect(client.events("t1", timeout=0.5), seen)
    assert 0.5 <= time.monotonic() - started < 1.5
    assert seen == ["processing"]
    assert timed_out.value.task is not None
    assert timed_out.value.task.status == "processing"
    # A silent stream too: its reads time out at the deadline.
    silent = Reply(200, headers=EVENT_STREAM, chunks=[status_event(PENDING), b""], chunk_delay=5)
    with WireServer([silent]) as wire:
        with Client(base_url=wire.base_url, api_key="sk-x") as client:
            started = time.monotonic()
            with pytest.raises(WaitTimeoutError):
                list(client.events("t1", timeout=0.5))
    assert time.monotonic() - started < 1.5


def test_events_errors() -> None:
    not_found = error_reply(404, "task_not_found", "invalid_request_error")
    with WireServer([not_found]) as wire, Client(base_url=wire.base_url, api_key="sk-x") as client:
        with pytest.raises(TaskNotFoundError):
            list(client.events("t1"))
    assert len(wire.seen) == 1
    not_a_stream = Reply(200, COMPLETED)  # application/json
    with WireServer([not_a_stream]) as wire:
        with Client(base_url=wire.base_url, api_key="sk-x") as client:
            with pytest.raises(ImagegateError, match="not an event stream"):
                list(client.events("t1"))
    garbled = Reply(200, b"event: status\ndata: {not json\n\n", EVENT_STREAM)
    with WireServer([garbled]) as wire, Client(base_url=wire.base_url, api_key="sk-x") as client:
        with pytest.raises(ImagegateError, match="unreadable response"):
            list(client.events("t1"))


async def test_the_async_events() -> None:
    broken = Reply(200, status_event(PENDING), EVENT_STREAM)
    with WireServer([broken, Reply(200, STREAM, EVENT_STREAM)]) as wire:
        async with AsyncClient(base_url=wire.base_url, api_key="sk-x") as client:
            statuses = [task.status async for task in client.events("t1")]
    assert statuses == ["pending", "processing", "completed"]
    assert len(wire.seen) == 2
    stream = Reply(200, headers=EVENT_STREAM, chunks=[b": keep-alive\n\n"] * 40, chunk_delay=0.05)
    with WireServer([stream]) as wire:
        async with AsyncClient(base_url=wire.base_url, api_key="sk-x") as client:
            with pytest.raises(WaitTimeoutError) as timed_out:
                async for _ in client.events("t1", timeout=0.3):
                    pass
    assert timed_out.value.task is None

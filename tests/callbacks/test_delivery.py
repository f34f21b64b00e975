"""Callbacks as an integrator's receiver sees them: headers, body, signatures, retry schedule."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from harness import Account, Server, running_server, wait_for
from imagegate.config import Settings
from receiver import HANG, Receiver, running_receiver


@pytest.fixture
async def server(settings: Settings) -> AsyncIterator[Server]:
    async with running_server(settings.model_copy(update={"callback_allow_private": True})) as s:
        yield s


async def create_with_callback(server: Server, account: Account, url: str, prompt: str) -> str:
    body = {"model": "ideogram-v4", "callback_url": url, "input": {"prompt": prompt}}
    response = await server.http.post("/v1/images/generations", json=body, headers=account.headers)
    assert response.status_code == 200, response.text
    task_id: str = response.json()["data"]["taskId"]
    return task_id


async def delivery_log(server: Server, account: Account, task_id: str) -> dict[str, Any]:
    response = await server.http.get(f"/v1/tasks/{task_id}/callbacks", headers=account.headers)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


async def settled(server: Server, account: Account, task_id: str, status: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        log = await delivery_log(server, account, task_id)
        return log if log["status"] == status else None

    return await wait_for(probe)


@pytest.mark.parametrize(
    ("prompt", "event"),
    [("a poster", "task.completed"), ("a poster [simulate:upstream_error]", "task.failed")],
)
async def test_a_callback_carries_the_task_object_signed(
    server: Server, prompt: str, event: str
) -> None:
    account = await server.account()
    async with running_receiver() as receiver:
        task_id = await create_with_callback(server, account, receiver.url, prompt)
        (received,) = await receiver.count(1)
        await settled(server, account, task_id, "delivered")
    polled = await server.http.get(f"/v1/tasks/{task_id}", headers=account.headers)
    assert received.body == polled.content  # byte for byte what GET returns
    assert json.loads(received.body)["status"] == event.removeprefix("task.")
    headers = received.headers
    assert headers["content-type"] == "application/json"
    assert headers["x-event"] == event
    assert headers["x-task-id"] == task_id
    assert abs(int(headers["x-timestamp"]) - server.clock.now()) < 5
    assert headers["webhook-timestamp"] == headers["x-timestamp"]
    assert headers["webhook-id"] == f"msg_{task_id}"

    secret = (await server.http.get("/v1/webhooks/secret", headers=account.headers)).json()
    assert secret["data"]["secret"].startswith("whsec_")
    webhook = Webhook(secret["data"]["secret"])
    assert webhook.verify(received.body, headers) == json.loads(polled.content)
    with pytest.raises(WebhookVerificationError):
        webhook.verify(received.body.replace(b'"status"', b'"Status"'), headers)
    other = await server.account()
    other_secret = await server.http.get("/v1/webhooks/secret", headers=other.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(other_secret.json()["data"]["secret"]).verify(received.body, headers)


async def walk_schedule(server: Server, account: Account, task_id: str, receiver: Receiver) -> None:
    """Drive the default schedule (0, +180 s, +600 s) through the clock, checking each gap."""
    await receiver.count(1)
    for number, delay in [(1, 180), (2, 600)]:
        log = await wait_for(lambda n=number: _attempts(server, account, task_id, n))
        attempt = log["attempts"][number - 1]
        assert attempt["status_code"] == 500
        assert attempt["error"] == "HTTP 500"
        assert attempt["next_attempt_at"] - attempt["attempted_at"] in (delay - 1, delay, delay + 1)
        assert log["next_attempt_at"] == attempt["next_attempt_at"]
        server.clock.advance(delay - 5)
        assert len(receiver.received) == number  # not yet due
        server.clock.advance(5)
        await receiver.count(number + 1)
    stamps = [int(r.headers["x-timestamp"]) for r in receiver.received]
    assert [b - a for a, b in zip(stamps, stamps[1:], strict=False)] in (
        [180, 600],
        [181, 600],
        [180, 601],
        [179, 600],
        [180, 599],
    )


async def _attempts(
    server: Server, account: Account, task_id: str, n: int
) -> dict[str, Any] | None:
    log = await delivery_log(server, account, task_id)
    return log if len(log["attempts"]) >= n else None


async def test_a_receiver_that_fails_twice_gets_exactly_three_attempts(server: Server) -> None:
    account = await server.account()
    async with running_receiver(lambda n: 500 if n <= 2 else 204) as receiver:
        task_id = await create_with_callback(server, account, receiver.url, "a cat")
        await walk_schedule(server, account, task_id, receiver)
        log = await settled(server, account, task_id, "delivered")
    assert [a["status_code"] for a in log["attempts"]] == [500, 500, 204]
    assert log["attempts"][2]["next_attempt_at"] is None
    assert len({r.headers["webhook-id"] for r in receiver.received}) == 1
    assert len(receiver.received) == 3


async def test_a_receiver_that_always_fails_gets_three_attempts_then_failed(server: Server) -> None:
    account = await server.account()
    async with running_receiver(lambda n: 500) as receiver:
        task_id = await create_with_callback(server, account, receiver.url, "a cat")
        await walk_schedule(server, account, task_id, receiver)
        log = await settled(server, account, task_id, "failed")
        server.clock.advance(3600)

        async def no_jobs() -> bool:
            # The worker deletes the last attempt's job in its own transaction, after the
            # handler's commit settled the callback: wait for it, then nothing is left to run.
            return await server.jobs() == []

        await wait_for(no_jobs)
    assert len(receiver.received) == 3
    assert [a["number"] for a in log["attempts"]] == [1, 2, 3]
    assert log["next_attempt_at"] is None
    task = await server.task(account, task_id)
    assert task["status"] == "completed"  # a failed callback never changes the task


@pytest.mark.parametrize(("status", "error"), [(302, "HTTP 302: redirect"), (HANG, "timed out")])
async def test_redirects_and_timeouts_are_failed_attempts(
    settings: Settings, status: int, error: str
) -> None:
    quick = settings.model_copy(
        update={
            "callback_allow_private": True,
            "callback_timeout": 0.5,
            "callback_retry_delays": (0.0,),
        }
    )
    async with running_server(quick) as server, running_receiver(lambda n: status) as receiver:
        account = await server.account()
        task_id = await create_with_callback(server, account, receiver.url, "a cat")
        log = await settled(server, account, task_id, "failed")
    (attempt,) = log["attempts"]
    assert attempt["error"].startswith(error)
    assert [r.path for r in receiver.received] == ["/hook"]  # the redirect was not followed


async def test_the_delivery_log_is_scoped_to_the_task_owner(server: Server) -> None:
    owner, stranger = await server.account(), await server.account()
    task_id = await create_with_callback(server, owner, "https://example.com/h", "a cat")
    response = await server.http.get(f"/v1/tasks/{task_id}/callbacks", headers=stranger.headers)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "task_not_found"
    without = (await server.create(owner)).json()["data"]["taskId"]
    await server.wait_final(owner, without)
    log = await delivery_log(server, owner, without)
    assert log == {
        "task_id": without, "url": None, "event": None, "status": None,
        "next_attempt_at": None, "attempts": [],
    }  # fmt: skip

"""GET /v1/tasks/{taskId} and POST /v1/images/generations are answered past FastAPI's routing
(http_hot.py); with a query string they go through FastAPI. Both ways must give the client the
same answer: status, body and headers."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from harness import Server
from imagegate.catalog import IDEOGRAM_V4

# Headers that differ between any two responses.
_PER_RESPONSE = {"date", "x-request-id", "x-ratelimit-remaining", "x-ratelimit-reset"}


def _seen(response: httpx.Response) -> tuple[int, bytes, dict[str, str]]:
    headers = {k: v for k, v in response.headers.items() if k not in _PER_RESPONSE}
    return response.status_code, response.content, headers


async def test_the_hot_path_answers_exactly_as_fastapi_does(server: Server) -> None:
    account = await server.account(credits=100)
    task = await server.run(account)
    other = await server.account(credits=100)
    cases = [
        (account.headers, task["id"]),  # completed, with its URLs
        (other.headers, task["id"]),  # another account's: 404 task_not_found
        (account.headers, "not-a-task"),
        ({"Authorization": "Bearer sk-nope"}, task["id"]),  # 401
        ({}, task["id"]),
    ]
    for headers, task_id in cases:
        hot = await server.http.get(f"/v1/tasks/{task_id}", headers=headers)
        routed = await server.http.get(f"/v1/tasks/{task_id}?unused=1", headers=headers)
        assert _seen(hot) == _seen(routed), (headers, task_id)
        assert hot.headers["x-request-id"]
    assert (
        await server.http.get(f"/v1/tasks/{task['id']}", headers=account.headers)
    ).json() == task


async def test_a_create_on_the_hot_path_answers_and_charges_as_through_fastapi(
    server: Server,
) -> None:
    rich, poor = await server.account(credits=1000), await server.account(credits=10)
    good = {"model": "ideogram-v4", "input": {"prompt": "a cat"}}
    cases: list[tuple[dict[str, str], Any]] = [
        ({"Authorization": "Bearer sk-nope"}, good),  # 401
        (rich.headers, {"model": "ideogram-v4"}),  # 400: input is required
        (rich.headers, "not json"),
        (rich.headers, {**good, "model": "ideogram-v9"}),  # 404
        (poor.headers, good),  # 402
    ]
    for headers, body in cases:
        content = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        hot = await server.http.post("/v1/images/generations", content=content, headers=headers)
        routed = await server.http.post(
            "/v1/images/generations?unused=1", content=content, headers=headers
        )
        assert _seen(hot) == _seen(routed), body
        assert hot.status_code >= 400
    for path in ("/v1/images/generations", "/v1/images/generations?unused=1"):
        created = await server.http.post(path, json=good, headers=rich.headers)
        assert created.status_code == 200
        assert set(created.json()["data"]) == {"taskId"}
    assert await server.ledger(rich) == (1000 - 2 * 28, 1000 - 2 * 28)


async def test_requests_read_together_each_get_their_own_caller_and_task(server: Server) -> None:
    """On PostgreSQL the reads of requests that arrive together go in one statement
    (tasks/reads.py): each request still gets its own key's answer and its own task."""
    accounts = [await server.account(credits=1000) for _ in range(3)]
    tasks = [(await server.create(account)).json()["data"]["taskId"] for account in accounts]
    nobody = {"Authorization": "Bearer sk-nope"}
    asked: list[tuple[dict[str, str], str, int]] = []
    for n, account in enumerate(accounts):
        asked += [(account.headers, tasks[n], 200), (account.headers, tasks[n - 1], 404)]
        asked += [(nobody, tasks[n], 401)]
    asked *= 4

    async def get(headers: dict[str, str], task_id: str) -> httpx.Response:
        return await server.http.get(f"/v1/tasks/{task_id}", headers=headers)

    async def create(n: int) -> httpx.Response:
        return await server.create(accounts[n % len(accounts)])

    answers = await asyncio.gather(
        *(get(headers, task_id) for headers, task_id, _ in asked),
        *(create(n) for n in range(12)),
    )
    for (_, task_id, status), answer in zip(asked, answers, strict=False):
        assert answer.status_code == status, answer.text
        if status == 200:
            assert answer.json()["id"] == task_id
    created = answers[len(asked) :]
    assert [answer.status_code for answer in created] == [200] * 12
    price = IDEOGRAM_V4.price("BALANCED")  # the default speed's
    for account in accounts:  # its first task and 4 of the 12: charged once each, exactly
        balance, entries = await server.ledger(account)
        assert balance == entries == 1000 - 5 * price
        shown = await server.http.get("/v1/credits", headers=account.headers)
        assert shown.json()["data"]["credits"] == balance

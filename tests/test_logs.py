"""Logs an operator can follow: IMAGEGATE_LOG_FORMAT=json gives one JSON object per line, each
line about a task names it and the request that made it, from the API through the worker to the
callback; no secret is ever written."""

from __future__ import annotations

import json
import re

import httpx

from harness import Server, wait_for
from imagegate.config import Settings
from processes import imagegate_process, provision, responds
from receiver import running_receiver


async def test_a_request_id_is_taken_from_the_client_or_made(server: Server) -> None:
    given = await server.http.get("/healthz", headers={"X-Request-Id": "checkout-42.a:b"})
    assert given.headers["x-request-id"] == "checkout-42.a:b"
    made = await server.http.get("/healthz")
    unusable = await server.http.get("/healthz", headers={"X-Request-Id": "has spaces"})
    for response in (made, unusable):
        assert len(response.headers["x-request-id"]) == 32
    assert made.headers["x-request-id"] != unusable.headers["x-request-id"]


async def test_json_lines_follow_a_task_from_the_api_to_its_callback(settings: Settings) -> None:
    account = await provision(settings, credits=1000)
    env = {"log_format": "json", "simulator_delay": "0", "callback_allow_private": "true"}
    port = str(settings.port)
    async with (
        running_receiver() as receiver,
        imagegate_process(settings, "serve", "--port", port, **env),
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=account.headers) as http,
    ):
        await wait_for(lambda: responds(http), within=60)
        body = {"model": "ideogram-v4", "callback_url": receiver.url, "input": {"prompt": "x"}}
        created = await http.post(
            "/v1/images/generations", json=body, headers={"X-Request-Id": "req-follow-me"}
        )
        task_id = created.json()["data"]["taskId"]

        async def delivered() -> bool:
            return bool(receiver.received)

        await wait_for(delivered, within=30)

        async def logged() -> list[dict[str, object]] | None:
            lines = _log_lines(settings)
            about = [line for line in lines if line["task_id"] == task_id]
            callback = [line for line in about if line["logger"] == "imagegate.callbacks.jobs"]
            return about if callback else None

        about = await wait_for(logged, within=30)
    loggers = {str(line["logger"]) for line in about}
    assert "uvicorn.access" in loggers  # the create, by the API
    assert "imagegate.tasks.jobs" in loggers  # its run, by the worker
    assert "imagegate.callbacks.jobs" in loggers  # its callback
    assert all(line["request_id"] == "req-follow-me" for line in about), about
    assert account.key not in _log_text(settings)
    keys = [line for line in _log_lines(settings) if re.search(r"sk-[\w-]{20}", json.dumps(line))]
    assert keys == []


def _log_text(settings: Settings) -> str:
    logs = settings.data_dir.parent / "logs"
    return "".join(path.read_text() for path in sorted(logs.glob("serve-*.log")))


def _log_lines(settings: Settings) -> list[dict[str, object]]:
    """Every JSON line the server wrote (the demo banner, printed before logging starts, is
    the only text that is not a log record)."""
    lines = []
    for raw in _log_text(settings).splitlines():
        if raw.startswith("{"):
            lines.append(json.loads(raw))
    return lines

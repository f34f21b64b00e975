"""Bad input gets the reference's error envelope with a message naming the field; never a 422."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from sqlalchemy import text

from harness import Account, Server, wait_for


def _body(**input_fields: Any) -> dict[str, Any]:
    return {"model": "ideogram-v4", "input": {"prompt": "a cat", **input_fields}}


SPEEDS = "'input.rendering_speed' must be one of: TURBO, BALANCED, QUALITY."
NOT_URL = "'callback_url' must be an absolute http or https URL."
LONG_URL = "https://e.com/" + "a" * 2048

INVALID_BODIES: list[tuple[Any, str]] = [
    ({"input": {"prompt": "a cat"}}, "'model' is required."),
    ({"model": "ideogram-v4"}, "'input' is required."),
    ({"model": "ideogram-v4", "input": {}}, "'input.prompt' is required."),
    ({"model": None, "input": {"prompt": "x"}}, "'model' must be a string."),
    ({"model": 4, "input": {"prompt": "x"}}, "'model' must be a string."),
    ({"model": "ideogram-v4", "input": None}, "'input' must be an object."),
    ({"model": "ideogram-v4", "input": "a cat"}, "'input' must be an object."),
    ({"model": "ideogram-v4", "input": [1]}, "'input' must be an object."),
    (_body(prompt=None), "'input.prompt' must be a string."),
    (_body(prompt=123), "'input.prompt' must be a string."),
    (_body(prompt=["a"]), "'input.prompt' must be a string."),
    (_body(prompt=""), "'input.prompt' must not be empty."),
    (_body(prompt="   "), "'input.prompt' must not be empty."),
    (_body(prompt="x" * 5001), "'input.prompt' must be at most 5,000 characters."),
    (_body(size="2:1"), "'input.size' must be one of: 1:1, 3:4, 9:16, 4:3, 16:9."),
    (_body(size=1), "'input.size' must be one of: 1:1, 3:4, 9:16, 4:3, 16:9."),
    (_body(rendering_speed="fast"), SPEEDS),
    (_body(rendering_speed="turbo"), SPEEDS),
    (_body(output_format="gif"), "'input.output_format' must be one of: jpeg, png."),
    (_body(output_format="jpg"), "'input.output_format' must be one of: jpeg, png."),
    ({**_body(), "callback_url": "ftp://example.com/x"}, NOT_URL),
    ({**_body(), "callback_url": "/relative"}, NOT_URL),
    ({**_body(), "callback_url": 7}, "'callback_url' must be a string."),
    ({**_body(), "callback_url": LONG_URL}, "'callback_url' must be at most 2,048 characters."),
    ({**_body(), "callback_url": "http://a.com/\x00"}, NOT_URL),
    ({**_body(), "callback_url": "http://a.com/a b"}, NOT_URL),
    ({**_body(), "callback_url": "http://a.com:99999/"}, NOT_URL),
    ({**_body(), "callback_url": "http://a.com:port/"}, NOT_URL),
    (_body(prompt="a\x00b"), "'input.prompt' must not contain NUL characters."),
    ([], "Request body must be a JSON object."),
    ("text", "Request body must be a JSON object."),
]  # fmt: skip


@pytest.fixture
async def account(server: Server) -> Account:
    return await server.account(credits=1000)


def assert_error(response: Any, status: int, code: str, error_type: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    assert list(body) == ["error"]
    assert list(body["error"]) == ["code", "message", "type"]
    assert body["error"]["code"] == code
    assert body["error"]["type"] == error_type
    return body["error"]


@pytest.mark.parametrize(("body", "message"), INVALID_BODIES)
async def test_invalid_bodies_are_400_naming_the_field(
    server: Server, account: Account, body: Any, message: str
) -> None:
    response = await server.http.post("/v1/images/generations", json=body, headers=account.headers)
    error = assert_error(response, 400, "invalid_request", "invalid_request_error")
    assert error["message"] == message
    assert await server.ledger(account) == (1000, 1000)


@pytest.mark.parametrize(
    "raw",
    [b"", b"{", b'{"model": "ideogram-v4",}', b"\xff\xfe", b"NaN", b'{"model": "a"}{}', b"null"],
)
async def test_malformed_json_is_400(server: Server, account: Account, raw: bytes) -> None:
    response = await server.http.post(
        "/v1/images/generations",
        content=raw,
        headers={**account.headers, "Content-Type": "application/json"},
    )
    error = assert_error(response, 400, "invalid_request", "invalid_request_error")
    assert error["message"] in (
        "Request body is not valid JSON.",
        "Request body must be a JSON object.",
    )


async def test_oversized_bodies_are_refused_before_reading(
    server: Server, account: Account
) -> None:
    limit = server.services.settings.max_body_bytes
    huge = {"model": "ideogram-v4", "input": {"prompt": "a cat"}, "pad": "x" * limit}
    response = await server.http.post("/v1/images/generations", json=huge, headers=account.headers)
    error = assert_error(response, 400, "invalid_request", "invalid_request_error")
    assert "larger than" in error["message"]

    async def chunked() -> Any:  # no Content-Length: the stream itself is capped
        yield b'{"model": "ideogram-v4", "input": {"prompt": "'
        for _ in range(limit // 1024 + 1):
            yield b"x" * 1024
        yield b'"}}'

    response = await server.http.post(
        "/v1/images/generations", content=chunked(), headers=account.headers
    )
    assert_error(response, 400, "invalid_request", "invalid_request_error")


async def test_prompt_of_exactly_5000_characters_and_unknown_fields_are_accepted(
    server: Server, account: Account
) -> None:
    body = {
        "model": "ideogram-v4",
        "input": {"prompt": "y" * 5000, "negative_prompt": "blur", "seed": 3, "size": None},
        "extra": {"anything": True},
    }
    response = await server.http.post("/v1/images/generations", json=body, headers=account.headers)
    assert response.status_code == 200, response.text
    task = await server.wait_final(account, response.json()["data"]["taskId"])
    assert task["status"] == "completed"


@pytest.mark.parametrize("model", ["ideogram-v3", "IDEOGRAM-V4", "", "dall-e-3"])
async def test_unknown_model_is_404_model_not_found(
    server: Server, account: Account, model: str
) -> None:
    response = await server.http.post(
        "/v1/images/generations",
        json={"model": model, "input": {"prompt": "a cat"}},
        headers=account.headers,
    )
    assert_error(response, 404, "model_not_found", "invalid_request_error")
    assert await server.ledger(account) == (1000, 1000)


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/nope", 404),  # "/" itself leads people to the console (tests/console)
        ("GET", "/v1/nope", 404),
        ("POST", "/v2/images/generations", 404),
        ("GET", "/v1/images/generations", 405),
        ("DELETE", "/v1/credits", 405),
        ("PUT", "/v1/tasks/abc", 405),
        ("GET", "/v1/credits/", 404),
        ("POST", "/v1/images/generations/", 404),
    ],
)
async def test_unknown_paths_and_methods_get_the_envelope(
    server: Server, account: Account, method: str, path: str, status: int
) -> None:
    """The status says what HTTP says (no such path, no such method); the body is the
    reference's envelope with its invalid_request code."""
    response = await server.http.request(method, path, headers=account.headers)
    error = assert_error(response, status, "invalid_request", "invalid_request_error")
    assert path in error["message"]
    if status == 405:
        assert response.headers["allow"]


async def test_no_422_escapes_for_bad_path_or_header_values(
    server: Server, account: Account
) -> None:
    for path in ["/v1/tasks/%00", "/v1/tasks/" + "a" * 5000]:
        response = await server.http.get(path, headers=account.headers)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "task_not_found"


async def test_a_broken_database_is_a_500_without_internals(
    server: Server, account: Account
) -> None:
    async with server.services.db.transaction() as session:
        await session.execute(text("DROP TABLE callback_attempts"))
        await session.execute(text("DROP TABLE callbacks"))
        await session.execute(text("DROP TABLE tasks"))
    response = await server.http.get(
        "/v1/tasks/397ce9f2-c04e-4244-ac33-3af19a7cc297", headers=account.headers
    )
    error = assert_error(response, 500, "internal_error", "api_error")
    assert error["message"] == "Unexpected server error."
    assert "tasks" not in response.text
    assert "Traceback" not in response.text


async def test_head_requests_are_answered_like_get(server: Server, account: Account) -> None:
    response = await server.http.head("/v1/credits", headers=account.headers)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.content == b""


async def test_a_client_that_hangs_up_mid_body_is_one_quiet_line(
    server: Server, account: Account, caplog: pytest.LogCaptureFixture
) -> None:
    host, port = server.base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    head = (
        "POST /v1/images/generations HTTP/1.1\r\n"
        f"Host: {host}\r\nAuthorization: Bearer {account.key}\r\n"
        "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
    )
    with caplog.at_level(logging.INFO, logger="imagegate.http_errors"):
        writer.write(head.encode() + b'{"model": "ideogram-v4", "inp')  # 29 of 1000 bytes
        await writer.drain()
        writer.close()
        await writer.wait_closed()
        await wait_for(
            lambda: _logged(caplog, "client went away during POST /v1/images/generations")
        )
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert await server.ledger(account) == (1000, 1000)  # nothing was charged
    del reader


async def _logged(caplog: pytest.LogCaptureFixture, text: str) -> bool:
    return any(text in record.getMessage() for record in caplog.records)

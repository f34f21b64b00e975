"""Callbacks cannot be aimed at this machine or its network (by default)."""

from __future__ import annotations

import httpx
import pytest

from harness import Server
from imagegate.callbacks.delivery import post_callback
from receiver import running_receiver

REFUSED = [
    "http://127.0.0.1/hook",
    "http://127.0.0.1:8000/v1/credits",
    "http://[::1]/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://0.0.0.0/hook",
    "http://10.1.2.3/hook",
    "http://172.16.0.1/hook",
    "http://172.31.255.254/hook",
    "http://192.168.1.1/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://100.64.0.1/hook",
    "http://224.0.0.1/hook",
    "http://240.0.0.1/hook",
    "http://[fd00::1]/hook",
    "http://[fe80::1]/hook",
    "http://localhost/hook",
    "http://localhost.:9000/hook",
    "ftp://example.com/hook",
    "file:///etc/passwd",
    "gopher://example.com/",
    "javascript:alert(1)",
    "http://user:pass@example.com/hook",
    "http://user@example.com/hook",
    "http:///no-host",
]


@pytest.mark.parametrize("url", REFUSED)
async def test_private_and_odd_callback_urls_are_refused_at_creation(
    server: Server, url: str
) -> None:
    account = await server.account()
    body = {"model": "ideogram-v4", "callback_url": url, "input": {"prompt": "a cat"}}
    response = await server.http.post("/v1/images/generations", json=body, headers=account.headers)
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["type"]) == ("invalid_request", "invalid_request_error")
    assert error["message"].startswith("'callback_url'")
    assert await server.ledger(account) == (1000, 1000)


async def test_public_and_not_yet_resolvable_hosts_are_accepted(server: Server) -> None:
    account = await server.account()
    for url in [
        "https://93.184.215.14/hook",
        "https://your-server.com/webhook",
        "http://x.invalid/",
    ]:
        body = {"model": "ideogram-v4", "callback_url": url, "input": {"prompt": "a cat"}}
        response = await server.http.post(
            "/v1/images/generations", json=body, headers=account.headers
        )
        assert response.status_code == 200, (url, response.text)


async def test_delivery_checks_the_address_it_connects_to() -> None:
    # A name that resolved to a public address at creation may resolve to loopback later (DNS
    # rebinding): the delivery itself refuses it, before any connection is made.
    async with running_receiver() as receiver, httpx.AsyncClient() as client:
        port = receiver.url.split(":")[2].split("/")[0]
        for url in [f"http://localhost:{port}/hook", receiver.url]:
            result = await post_callback(client, url, b"{}", {}, allow_private=False, time_limit=5)
            assert result.status_code is None
            assert (result.error or "").startswith("refused: host")
        assert receiver.received == []
        allowed = await post_callback(
            client, receiver.url, b"{}", {}, allow_private=True, time_limit=5
        )
    assert allowed.delivered
    assert len(receiver.received) == 1

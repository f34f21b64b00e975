"""Callbacks cannot be aimed at this machine or its network (by default)."""

from __future__ import annotations

import ipaddress

import httpx
import pytest

from harness import Server
from imagegate.callbacks.delivery import post_callback
from imagegate.callbacks.ssrf import is_public
from imagegate.outbound import GuardedTransport, pinned
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
    "http://[fec0::1]/hook",  # site-local (deprecated): Python's is_global lets it pass
    "http://198.18.0.1/hook",  # benchmarking
    "http://[2001:db8::1]/hook",  # documentation
    "http://[64:ff9b::a00:1]/hook",  # NAT64 around 10.0.0.1
    "http://[2002:7f00:1::]/hook",  # 6to4 around 127.0.0.1
    "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/hook",  # Teredo around 192.0.2.45
    "http://2130706433/hook",  # 127.0.0.1 as one decimal number
    "http://0x7f.1/hook",
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


def guarded(allow_private: bool) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=GuardedTransport(allow_private), trust_env=False)


async def test_delivery_checks_the_address_it_connects_to() -> None:
    # A name that resolved to a public address at creation may resolve to loopback later (DNS
    # rebinding): the delivery itself refuses it, before any connection is made.
    async with running_receiver() as receiver, guarded(False) as client:
        port = receiver.url.split(":")[2].split("/")[0]
        for url in [f"http://localhost:{port}/hook", receiver.url]:
            result = await post_callback(client, url, b"{}", {}, time_limit=5)
            assert result.status_code is None
            assert (result.error or "").startswith("refused: host")
        assert receiver.received == []
        async with guarded(True) as lenient:
            allowed = await post_callback(lenient, receiver.url, b"{}", {}, time_limit=5)
    assert allowed.delivered
    assert len(receiver.received) == 1
    assert receiver.received[0].headers["host"] == f"127.0.0.1:{port}"


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("fec0::1", False), ("100.64.0.1", False), ("198.18.0.1", False),
        ("2001:db8::1", False), ("::ffff:10.0.0.1", False), ("64:ff9b::a00:1", False),
        ("192.0.0.9", False), ("::a00:1", False), ("3fff::1", False),
        ("93.184.215.14", True), ("2606:4700::1111", True), ("::ffff:8.8.8.8", True),
        ("64:ff9b::808:808", True),
    ],
)  # fmt: skip
def test_the_address_rule(address: str, public: bool) -> None:
    assert is_public(ipaddress.ip_address(address)) is public


def test_international_host_names_travel_in_their_dns_form() -> None:
    target, host, extensions = pinned("https://bücher.example:8443/hook?x=1", "93.184.215.14")
    assert target == "https://93.184.215.14:8443/hook?x=1"
    assert host == "xn--bcher-kva.example:8443"
    assert extensions == {"sni_hostname": "xn--bcher-kva.example"}


async def test_an_unresolvable_international_host_is_a_failed_attempt_not_an_error() -> None:
    async with guarded(False) as client:
        result = await post_callback(client, "http://bücher.invalid/hook", b"{}", {}, time_limit=5)
    assert result.error == "host 'xn--bcher-kva.invalid' could not be resolved"

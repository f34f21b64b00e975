"""An upstream's image URL, or a redirect it takes, cannot point imagegate at this machine or its
network: the task fails and is refunded, unless the operator allows private addresses.

Only loopback is ever connected to. The other private addresses are refused before any
connection; should a regression let one through, the tests' resolver (the guard's own
``resolve`` behind a loopback-only net) stops it and records the escape. Names under
``.example`` stand for public hosts that live, here, on loopback: how a redirect *from* a public
host *to* a private address is tested.
"""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from harness import Server, running_server, serve_asgi
from imagegate.callbacks.ssrf import Unresolvable, resolve
from imagegate.config import Settings
from imagegate.db.models import LedgerEntry
from imagegate.outbound import MAX_REDIRECTS, image_client
from imagegate.providers.base import BAD_IMAGE, UNAVAILABLE, GenerationRequest, ProviderError
from imagegate.providers.ideogram import IdeogramProvider
from imagegate.providers.setup import build_rehoster, upstream_client
from receiver import running_receiver
from upstream_fakes import IDEOGRAM_KEY, FakeIdeogram, png, running, server_for, upstream_settings

PRIVATE = ["10.0.0.1", "169.254.169.254", "[fec0::1]"]  # and 127.0.0.1, where the fakes are
REQUEST = GenerationRequest(
    task_id="t", prompt="x", size="1:1", width=64, height=64,
    rendering_speed="TURBO", output_format="png",
)  # fmt: skip


class LoopbackNet:
    """The guard's resolver, with ``.example`` names public and on loopback; an address the
    guard would let through that is not loopback is stopped here and recorded."""

    def __init__(self) -> None:
        self.escaped: list[str] = []

    async def __call__(self, url: str, allow_private: bool) -> list[str]:
        if (urlsplit(url).hostname or "").endswith(".example"):
            return ["127.0.0.1"]
        addresses = await resolve(url, allow_private)
        if not all(ipaddress.ip_address(address).is_loopback for address in addresses):
            self.escaped.append(url)
            raise Unresolvable("stopped by the test: it would have left this machine")
        return addresses


@asynccontextmanager
async def guarded_server(
    settings: Settings, fake: FakeIdeogram, net: LoopbackNet, allow_private: bool = False
) -> AsyncIterator[Server]:
    """imagegate with Ideogram (``fake``) as built from settings, its images fetched through
    ``net``."""
    configured = upstream_settings(settings, ideogram=fake, upstream_allow_private=allow_private)
    async with upstream_client(configured) as api, image_client(configured, net) as images:
        rehoster = build_rehoster(configured, images)
        provider = IdeogramProvider(api, rehoster, IDEOGRAM_KEY, fake.base_url)
        async with running_server(configured, {"ideogram-v4": provider}) as server:
            fake.clock = server.clock
            yield server


async def refunded_once(server: Server, task: dict[str, Any]) -> bool:
    async with server.services.db.sessions() as session:
        kinds = await session.scalars(
            select(LedgerEntry.kind).where(LedgerEntry.task_id == task["id"])
        )
        return sorted(kinds) == ["charge", "refund"]


async def assert_refused(server: Server, fake: FakeIdeogram) -> None:
    account = await server.account(credits=1000)
    task = await server.run(account)
    assert task["status"] == "failed"
    assert task["error"] == {"code": "upstream_error", "message": BAD_IMAGE}
    assert await server.ledger(account) == (1000, 1000)
    assert await refunded_once(server, task)
    assert len(fake.calls) == 1, "a refused address is not asked for again"


@pytest.mark.parametrize("allow_private", [False, True])
async def test_the_operator_decides_whether_image_urls_may_be_private(
    settings: Settings, allow_private: bool
) -> None:
    # As services build it: the fake serves its images from 127.0.0.1.
    async with running(FakeIdeogram()) as fake:
        configured = upstream_settings(
            settings, ideogram=fake, upstream_allow_private=allow_private
        )
        async with server_for(configured, fake) as server:
            if not allow_private:
                await assert_refused(server, fake)
                return
            account = await server.account(credits=1000)
            task = await server.run(account)
            assert task["status"] == "completed"
            assert await server.ledger(account) == (1000 - 28, 1000 - 28)


@pytest.mark.parametrize("address", PRIVATE)
async def test_an_image_url_at_a_private_address_fails_the_task_with_a_refund(
    settings: Settings, address: str
) -> None:
    net = LoopbackNet()
    async with running(FakeIdeogram(image_base=f"http://{address}")) as fake:
        async with guarded_server(settings, fake, net) as server:
            await assert_refused(server, fake)
    assert net.escaped == []


def redirector(target: dict[str, str]) -> Starlette:
    """An image host that redirects /files/<name> to ``target["url"]`` (formatted with name)."""

    async def redirect(request: Request) -> Response:
        return RedirectResponse(target["url"].format(name=request.path_params["name"]), 302)

    return Starlette(routes=[Route("/files/{name}", redirect)])


@asynccontextmanager
async def redirected(target: str) -> AsyncIterator[FakeIdeogram]:
    """Ideogram whose image URLs are on cdn.example, which redirects them to ``target``, a
    template with {port} (the fake's, which serves the images) and {name}."""
    where: dict[str, str] = {}
    async with serve_asgi(redirector(where)) as cdn, running(FakeIdeogram()) as fake:
        fake.image_base = cdn.replace("127.0.0.1", "cdn.example")
        where["url"] = target.replace("{port}", fake.base_url.rsplit(":", 1)[1])
        yield fake


REDIRECTED = [
    "http://127.0.0.1:{port}/files/{name}",  # the image is there, but at a loopback address
    "http://10.0.0.1/files/{name}",
    "http://169.254.169.254/latest/meta-data/",
    "http://[fec0::1]/files/{name}",
]


@pytest.mark.parametrize("target", REDIRECTED)
async def test_a_redirect_to_a_private_address_fails_the_task_with_a_refund(
    settings: Settings, target: str
) -> None:
    net = LoopbackNet()
    async with redirected(target) as fake, guarded_server(settings, fake, net) as server:
        await assert_refused(server, fake)
    assert net.escaped == []


@pytest.mark.parametrize(
    ("target", "allow_private"),
    [("http://images.example:{port}/files/{name}", False), (REDIRECTED[0], True)],
)
async def test_a_redirect_to_an_allowed_address_is_followed(
    settings: Settings, target: str, allow_private: bool
) -> None:
    # cdn.example and images.example have no DNS entry: the download reaches them only because
    # the connection goes to the address the guard checked, never to a second lookup's answer.
    net = LoopbackNet()
    async with redirected(target) as fake, guarded_server(settings, fake, net, allow_private) as s:
        account = await s.account(credits=1000)
        task = await s.run(account)
    assert task["status"] == "completed", task
    assert net.escaped == []


async def test_redirects_are_followed_only_a_few_times(settings: Settings) -> None:
    hops: list[str] = []

    async def again(request: Request) -> Response:
        hops.append(request.url.path)
        return RedirectResponse(f"/loop/{len(hops)}", 302)

    async with serve_asgi(Starlette(routes=[Route("/loop/{n}", again)])) as base_url:
        url = base_url.replace("127.0.0.1", "cdn.example") + "/loop/0"
        async with image_client(settings, LoopbackNet()) as images:
            with pytest.raises(ProviderError) as failed:
                await build_rehoster(settings, images).fetch(url, REQUEST)
    assert failed.value.message == UNAVAILABLE
    assert len(hops) == MAX_REDIRECTS + 1


async def test_a_host_with_no_address_is_a_retryable_failure(settings: Settings) -> None:
    async with image_client(settings, LoopbackNet()) as images:
        with pytest.raises(ProviderError) as failed:
            await build_rehoster(settings, images).fetch("http://cat.invalid/a.png", REQUEST)
    assert (failed.value.message, failed.value.retryable) == (UNAVAILABLE, True)


async def test_image_downloads_never_go_through_an_environment_proxy(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with running(FakeIdeogram()) as fake, running_receiver(lambda _n: 502) as proxy:
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
            monkeypatch.setenv(name, proxy.url.removesuffix("/hook"))
        for name in ("NO_PROXY", "no_proxy", "http_proxy", "https_proxy", "all_proxy"):
            monkeypatch.delenv(name, raising=False)
        fake.files["cat.png"] = png("64x64")
        url = fake.base_url.replace("127.0.0.1", "images.example") + "/files/cat.png"
        async with upstream_client(settings) as api:  # the APIs' client does use the proxy
            assert (await api.get(url)).status_code == 502
        assert len(proxy.received) == 1
        async with image_client(settings, LoopbackNet()) as images:
            image = await build_rehoster(settings, images).fetch(url, REQUEST)
        assert image.data.startswith(b"\x89PNG")
        assert len(proxy.received) == 1, "the image download went through the proxy"

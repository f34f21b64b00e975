"""An upstream's image URL, or a redirect it takes, cannot point imagegate at this machine or its
network: the task fails and is refunded, unless the operator allows private addresses."""

from __future__ import annotations

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from harness import serve_asgi
from imagegate.callbacks.ssrf import resolve
from imagegate.config import Settings
from imagegate.outbound import image_client
from imagegate.providers.base import BAD_IMAGE, GenerationRequest, ProviderError
from imagegate.providers.rehost import Rehoster
from upstream_fakes import FakeIdeogram, png, running, server_for, upstream_settings

PRIVATE = ["http://10.0.0.1", "http://169.254.169.254", "http://[fec0::1]", "http://127.0.0.1:9"]
REQUEST = GenerationRequest(
    task_id="t", prompt="x", size="1:1", width=64, height=64,
    rendering_speed="TURBO", output_format="png",
)  # fmt: skip


@pytest.mark.parametrize("image_base", ["", *PRIVATE])
async def test_an_image_url_at_a_private_address_fails_the_task_with_a_refund(
    settings: Settings, image_base: str
) -> None:
    async with running(FakeIdeogram(image_base=image_base)) as fake:
        strict = upstream_settings(settings, ideogram=fake, upstream_allow_private=False)
        async with server_for(strict, fake) as server:
            account = await server.account(credits=1000)
            task = await server.run(account)
            assert await server.ledger(account) == (1000, 1000)  # charged, then refunded
    assert task["status"] == "failed"
    assert task["error"]["message"] == BAD_IMAGE  # "" above: the fake's own loopback URL
    assert len(fake.calls) == 1  # the image was refused, not retried against the API


def cdn(target_of: dict[str, str]) -> Starlette:
    """An image host: /img/<name> redirects where ``target_of`` says; /real.png is an image."""

    async def redirect(request: Request) -> Response:
        return RedirectResponse(target_of[request.path_params["name"]], status_code=302)

    async def image(request: Request) -> Response:
        return Response(png("1024x1024"), media_type="image/png")

    return Starlette(routes=[Route("/img/{name}", redirect), Route("/real.png", image)])


async def test_each_redirect_hop_is_checked(settings: Settings) -> None:
    targets = {f"to{n}": f"{base}/x.png" for n, base in enumerate(PRIVATE)}
    targets["ok"] = "/real.png"
    async with serve_asgi(cdn(targets)) as base_url:
        port = base_url.rsplit(":", 1)[1]

        async def public_cdn(url: str, allow_private: bool) -> list[str]:
            """cdn.example is a public host (here, on loopback); other names as usual."""
            if url.startswith(f"http://cdn.example:{port}/"):
                return ["127.0.0.1"]
            return await resolve(url, allow_private)

        strict = settings.model_copy(update={"upstream_allow_private": False})
        async with image_client(strict, resolver=public_cdn) as http:
            rehoster = Rehoster(http, 10_000_000, 10_000_000, 5.0)
            fetched = await rehoster.fetch(f"http://cdn.example:{port}/img/ok", REQUEST)
            assert fetched.data.startswith(b"\x89PNG")
            for name in targets.keys() - {"ok"}:
                with pytest.raises(ProviderError) as refused:
                    await rehoster.fetch(f"http://cdn.example:{port}/img/{name}", REQUEST)
                assert refused.value.message == BAD_IMAGE
                assert "refused" in refused.value.detail
                assert not refused.value.retryable

"""Fetching an upstream's image before its URL expires (Ideogram: 24 h, Replicate: 1 h).

Through outbound.image_client: the URL and every redirect it takes may only reach public
addresses (unless IMAGEGATE_UPSTREAM_ALLOW_PRIVATE), so a model's output cannot point us at
this network.

The image is downloaded with a size cap and a time limit, checked and converted by Pillow to
the task's output format; the task then points at our own storage, never at the upstream.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import httpx

from imagegate.outbound import RefusedDestination
from imagegate.providers.base import (
    GeneratedImage,
    GenerationRequest,
    bad_image,
    unavailable,
)
from imagegate.storage.images import UnusableImage, prepare_image

_CHUNK = 64 * 1024


class Rehoster:
    def __init__(
        self, http: httpx.AsyncClient, max_bytes: int, max_pixels: int, timeout: float
    ) -> None:
        self.http, self.max_bytes, self.max_pixels, self.timeout = (
            http, max_bytes, max_pixels, timeout,
        )  # fmt: skip

    async def fetch(self, url: str, request: GenerationRequest) -> GeneratedImage:
        """The image at ``url`` in ``request.output_format``; ProviderError when it cannot be
        had (expired or missing: retryable, a new generation gets a new URL) or used."""
        data = await self._download(url)
        try:
            image = await asyncio.to_thread(
                prepare_image, data, request.output_format, self.max_pixels
            )
        except UnusableImage as exc:
            raise bad_image(f"image from {_host(url)}: {exc}") from None
        return GeneratedImage(image, request.output_format)

    async def _download(self, url: str) -> bytes:
        if urlsplit(url).scheme not in ("http", "https"):
            raise unavailable(f"image URL with scheme {urlsplit(url).scheme!r}")
        try:
            async with self.http.stream("GET", url, timeout=self.timeout) as response:
                if response.status_code != 200:
                    raise unavailable(f"image from {_host(url)} answered {response.status_code}")
                _check_headers(response, self.max_bytes)
                return await self._read_capped(response)
        except RefusedDestination as exc:
            if exc.unresolvable:  # DNS down or slow: a new try (or generation) may do
                raise unavailable(f"image from {_host(url)}: {exc.reason}") from None
            # A private address (unless the operator allows them): asking again cannot help.
            raise bad_image(f"image URL refused: {exc.reason}") from None
        except httpx.TimeoutException:
            raise unavailable(f"image from {_host(url)} timed out") from None
        except httpx.HTTPError as exc:
            raise unavailable(f"image from {_host(url)}: {type(exc).__name__}") from None

    async def _read_capped(self, response: httpx.Response) -> bytes:
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes(_CHUNK):
            size += len(chunk)
            if size > self.max_bytes:
                raise bad_image(f"image larger than {self.max_bytes:,} bytes")
            chunks.append(chunk)
        return b"".join(chunks)


def _check_headers(response: httpx.Response, max_bytes: int) -> None:
    content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type and not (
        content_type.startswith("image/") or content_type == "application/octet-stream"
    ):
        raise bad_image(f"image URL served {content_type!r}")
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise bad_image(f"image of {int(declared):,} bytes, over {max_bytes:,}")


def _host(url: str) -> str:
    """The host only: upstream URLs carry signatures that do not belong in logs."""
    return urlsplit(url).netloc or "?"

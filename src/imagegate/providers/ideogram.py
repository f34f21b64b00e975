"""Ideogram's own API (api.ideogram.ai): a synchronous generate call, then the image re-hosted.

Ideogram has renamed fields between API versions (``prompt`` became ``text_prompt``, aspect
ratios became resolutions), so the endpoint, the field names and the value mappings live in
one table, IDEOGRAM_V4, and nowhere else. Responses are read leniently: unknown fields are
ignored, and only ``data[].url`` is needed (and ``is_image_safe`` when present).

A 429 or 5xx becomes a retryable failure carrying its Retry-After (read against this adapter's
clock); the router waits (providers/backoff.py) and asks again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

from imagegate.clock import Clock
from imagegate.providers.base import (
    GeneratedImage,
    GenerationRequest,
    rejected,
    unavailable,
)
from imagegate.providers.rehost import Rehoster
from imagegate.providers.upstream import json_object, send, status_error


@dataclass(frozen=True)
class Endpoint:
    path: str
    prompt_field: str
    size_field: str
    speed_field: str
    sizes: dict[str, str] = field(default_factory=dict)  # catalogue size -> upstream value
    speeds: dict[str, str] = field(default_factory=dict)  # catalogue speed -> upstream value


IDEOGRAM_V4 = Endpoint(
    path="/v1/ideogram-v4/generate",
    prompt_field="text_prompt",
    size_field="resolution",  # Ideogram 4.0's 2K resolutions
    speed_field="rendering_speed",
    sizes={
        "1:1": "2048x2048",
        "3:4": "1728x2304",
        "9:16": "1440x2560",
        "4:3": "2304x1728",
        "16:9": "2560x1440",
    },
    speeds={"TURBO": "TURBO", "BALANCED": "DEFAULT", "QUALITY": "QUALITY"},
)


class IdeogramProvider:
    name = "ideogram"

    def __init__(
        self,
        http: httpx.AsyncClient,
        rehoster: Rehoster,
        api_key: str,
        base_url: str,
        endpoint: Endpoint = IDEOGRAM_V4,
        clock: Clock | None = None,
    ) -> None:
        self.http, self.rehoster, self.endpoint = http, rehoster, endpoint
        self.clock = clock or Clock()
        self._api_key = api_key
        self.url = base_url.rstrip("/") + endpoint.path

    async def generate(self, request: GenerationRequest) -> list[GeneratedImage]:
        response = await send(
            self.http, self.name, "POST", self.url,
            json=self.body(request), headers={"Api-Key": self._api_key},
        )  # fmt: skip
        if response.status_code == 422:
            raise rejected(f"ideogram: {_error_text(response)}")
        if response.status_code != 200:
            raise status_error(self.name, response, self.clock.now())
        urls = _image_urls(json_object(self.name, response))
        return [await self.rehoster.fetch(url, request) for url in urls]

    def body(self, request: GenerationRequest) -> dict[str, Any]:
        e = self.endpoint
        return {
            e.prompt_field: request.prompt,
            e.size_field: e.sizes[request.size],
            e.speed_field: e.speeds[request.rendering_speed],
        }


def _image_urls(body: dict[str, Any]) -> list[str]:
    """The URL of each safe image; a rejection when every image failed the safety check."""
    data = body.get("data")
    if not isinstance(data, list) or not data:
        raise unavailable("ideogram: response without a data list")
    urls: list[str] = []
    unsafe = 0
    for item in data:
        if not isinstance(item, dict):
            continue
        url = item.get("url")
        if item.get("is_image_safe") is False or (url is None and "is_image_safe" in item):
            unsafe += 1
        elif isinstance(url, str) and url:
            urls.append(url)
    if urls:
        return urls
    if unsafe:
        raise rejected("ideogram: generated image failed the safety check")
    raise unavailable("ideogram: response without an image URL")


def _error_text(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return "safety check failed"
    return str(body.get("error", "safety check failed")) if isinstance(body, dict) else "?"

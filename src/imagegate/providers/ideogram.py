"""Ideogram's own API (api.ideogram.ai): a synchronous generate call, then the image re-hosted.

Ideogram has renamed fields between API versions (``prompt`` became ``text_prompt``, aspect
ratios became resolutions), so the endpoint, the field names and the value mappings live in
one table, IDEOGRAM_V4, and nowhere else. Responses are read leniently: unknown fields are
ignored, and only ``data[].url`` is needed (``is_image_safe`` and ``seed`` when present).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

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
    ) -> None:
        self.http, self.rehoster, self.endpoint = http, rehoster, endpoint
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
            raise status_error(self.name, response)
        images = _images(json_object(self.name, response))
        return [await self.rehoster.fetch(url, request, seed) for url, seed in images]

    def body(self, request: GenerationRequest) -> dict[str, Any]:
        e = self.endpoint
        return {
            e.prompt_field: request.prompt,
            e.size_field: e.sizes[request.size],
            e.speed_field: e.speeds[request.rendering_speed],
        }


def _images(body: dict[str, Any]) -> list[tuple[str, int | None]]:
    """(url, seed) of each safe image; a rejection when every image failed the safety check."""
    data = body.get("data")
    if not isinstance(data, list) or not data:
        raise unavailable("ideogram: response without a data list")
    images: list[tuple[str, int | None]] = []
    unsafe = 0
    for item in data:
        if not isinstance(item, dict):
            continue
        url, seed = item.get("url"), item.get("seed")
        if item.get("is_image_safe") is False or (url is None and "is_image_safe" in item):
            unsafe += 1
        elif isinstance(url, str) and url:
            images.append((url, seed if isinstance(seed, int) else None))
    if images:
        return images
    if unsafe:
        raise rejected("ideogram: generated image failed the safety check")
    raise unavailable("ideogram: response without an image URL")


def _error_text(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return "safety check failed"
    return str(body.get("error", "safety check failed")) if isinstance(body, dict) else "?"

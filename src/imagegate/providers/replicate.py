"""Replicate's predictions API: create with ``Prefer: wait``, poll until final, re-host.

``POST /v1/models/{owner}/{name}/predictions`` answers at once or after up to 60 s with a
prediction; until its status is ``succeeded``, ``failed`` or ``canceled`` we poll its
``urls.get`` (only on Replicate's own host: the token never goes anywhere else). ``output``
is a URL or a list of URLs. A prediction that outlives the deadline is canceled.

A 429 or 5xx answer to a poll is a hiccup, not a failure: the prediction goes on upstream, so we
wait (its Retry-After, else exponential backoff with jitter: providers/backoff.py; never less
than the poll interval, never past the deadline) and poll again.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from imagegate.clock import Clock
from imagegate.providers import backoff
from imagegate.providers.base import (
    GeneratedImage,
    GenerationRequest,
    rejected,
    unavailable,
)
from imagegate.providers.ideogram import IDEOGRAM_V4
from imagegate.providers.rehost import Rehoster
from imagegate.providers.replicate_input import mapped_input
from imagegate.providers.upstream import json_object, send, status_error

FINAL = ("succeeded", "failed", "canceled")
# Replicate's Ideogram models: one per speed ("ideogram-v4-{speed}"), or one taking the speed.
SLUG_SPEEDS = {"TURBO": "turbo", "BALANCED": "balanced", "QUALITY": "quality"}
INPUT_SPEEDS = {"TURBO": "Turbo", "BALANCED": "Default", "QUALITY": "Quality"}
# Words of Replicate's content-filter errors ("NSFW content detected", "flagged as sensitive").
_SAFETY_WORDS = ("nsfw", "sensitive", "safety", "prohibited", "flagged")
_MAX_WAIT = 60


@dataclass(frozen=True)
class _Hiccup:
    """A poll answered 429 or 5xx: the prediction goes on; ask again after a wait."""

    retry_after: float | None  # seconds, from the answer's Retry-After


class ReplicateProvider:
    name = "replicate"

    def __init__(
        self,
        http: httpx.AsyncClient,
        rehoster: Rehoster,
        clock: Clock,
        *,
        api_token: str,
        base_url: str,
        model: str,
        poll_interval: float,
        deadline: float,
        wait: int,
    ) -> None:
        self.http, self.rehoster, self.clock = http, rehoster, clock
        self.base_url, self.model = base_url.rstrip("/"), model
        self.poll_interval, self.deadline = poll_interval, deadline
        self.wait = max(1, min(wait, _MAX_WAIT))
        self._headers = {"Authorization": f"Bearer {api_token}"}

    async def generate(self, request: GenerationRequest) -> list[GeneratedImage]:
        ends = self.clock.now() + self.deadline
        prediction = await self._create(request)
        try:
            return await self._finish(prediction, request, ends)
        except asyncio.CancelledError:  # the task was cancelled: stop paying for its prediction
            if prediction.get("status") not in FINAL:
                await asyncio.shield(self._cancel(prediction))
            raise

    async def _finish(
        self, prediction: dict[str, Any], request: GenerationRequest, ends: float
    ) -> list[GeneratedImage]:
        wait, hiccups = self.poll_interval, 0  # hiccups: 429/5xx answers to polls in a row
        while prediction.get("status") not in FINAL:
            now = self.clock.now()
            if now >= ends:
                await self._cancel(prediction)
                raise unavailable(f"replicate: prediction not done after {self.deadline:.0f}s")
            await self.clock.sleep(min(wait, ends - now))
            polled = await self._poll(prediction)
            if isinstance(polled, _Hiccup):
                delay = backoff.delay(hiccups, self.poll_interval, polled.retry_after)
                wait, hiccups = max(delay, self.poll_interval), hiccups + 1
            else:
                prediction, wait, hiccups = polled, self.poll_interval, 0
        return [await self.rehoster.fetch(url, request) for url in _outputs(prediction)]

    def slug(self, request: GenerationRequest) -> str:
        return self.slug_template(request).replace("{speed}", SLUG_SPEEDS[request.rendering_speed])

    def body(self, request: GenerationRequest) -> dict[str, Any]:
        template = request.upstream.get("input")
        if template is not None:  # the catalogue model's own inputs (replicate_input.py)
            return {"input": mapped_input(template, request.upstream.get("values", {}), request)}
        model_input: dict[str, Any] = {
            "prompt": request.prompt,
            "resolution": IDEOGRAM_V4.sizes[request.size],
        }
        if "{speed}" not in self.slug_template(request):
            model_input["rendering_speed"] = INPUT_SPEEDS[request.rendering_speed]
        return {"input": model_input}

    def slug_template(self, request: GenerationRequest) -> str:
        return str(request.upstream.get("model") or self.model)

    async def _create(self, request: GenerationRequest) -> dict[str, Any]:
        url = f"{self.base_url}/v1/models/{self.slug(request)}/predictions"
        headers = {**self._headers, "Prefer": f"wait={self.wait}"}
        response = await send(
            self.http, self.name, "POST", url, json=self.body(request), headers=headers
        )
        if response.status_code not in (200, 201, 202):
            raise status_error(self.name, response, self.clock.now())
        return _prediction(json_object(self.name, response))

    async def _poll(self, prediction: dict[str, Any]) -> dict[str, Any] | _Hiccup:
        """The prediction as it is now, or a hiccup (429, 5xx) to wait out and poll again."""
        response = await send(self.http, self.name, "GET", self._url(prediction, "get"),
                               headers=self._headers)  # fmt: skip
        if response.status_code == 429 or response.status_code >= 500:
            return _Hiccup(backoff.retry_after(response, self.clock.now()))
        if response.status_code != 200:
            raise status_error(self.name, response, self.clock.now())
        return _prediction(json_object(self.name, response))

    async def _cancel(self, prediction: dict[str, Any]) -> None:
        """Best effort: stop paying for a prediction nobody will wait for."""
        try:
            await self.http.post(self._url(prediction, "cancel"), headers=self._headers)
        except httpx.HTTPError:
            pass

    def _url(self, prediction: dict[str, Any], action: str) -> str:
        """The prediction's own URL for ``action``, if it is on our base host; otherwise the
        documented one built from its id."""
        urls = prediction.get("urls")
        given = urls.get(action) if isinstance(urls, dict) else None
        if isinstance(given, str) and _same_origin(given, self.base_url):
            return given
        suffix = "/cancel" if action == "cancel" else ""
        return f"{self.base_url}/v1/predictions/{prediction['id']}{suffix}"


def _prediction(body: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(body.get("id"), str) or not isinstance(body.get("status"), str):
        raise unavailable("replicate: prediction without an id or status")
    if body["status"] == "failed":
        error = str(body.get("error") or "prediction failed")
        if any(word in error.lower() for word in _SAFETY_WORDS):
            raise rejected(f"replicate: {error[:200]}")
        raise unavailable(f"replicate: prediction failed: {error[:200]}")
    if body["status"] == "canceled":
        raise unavailable("replicate: prediction was canceled")
    return body


def _outputs(prediction: dict[str, Any]) -> list[str]:
    output = prediction.get("output")
    items = output if isinstance(output, list) else [output]
    urls = [item for item in items if isinstance(item, str) and item]
    if not urls:
        raise unavailable("replicate: succeeded without an output URL")
    return urls


def _same_origin(url: str, base: str) -> bool:
    a, b = urlsplit(url), urlsplit(base)
    return (a.scheme, a.netloc) == (b.scheme, b.netloc)

"""Loopback HTTP servers that speak Ideogram's and Replicate's protocols, scripted per call.

Each fake answers its n-th generation request with the n-th entry of its script ("ok" once the
script runs out) and serves the images it made at /files/<name>, as the real upstreams serve
their ephemeral image URLs. Scripted answers:

ok          an image (a PNG of the requested resolution)
minimal     (Ideogram) an image, in a response with nothing but data[].url
safety      a content rejection (Ideogram: 422; Replicate: a failed "NSFW" prediction)
unsafe      (Ideogram) 200 with is_image_safe false and no URL
429:N       429 Too Many Requests with Retry-After: N
500, 502    a server error
401         an authentication error (also what a wrong key gets)
hang        no answer until the fake shuts down
hold        (Ideogram) an image once release() is called: for in-flight counting
malformed   200 with a body that is not the JSON the protocol promises
expired     an image URL that answers 404, as an expired one does
oversized   an image URL serving a large, noisy PNG
async       (Replicate) "starting", then "processing" on the first poll, then "succeeded"
stuck       (Replicate) "starting" and "processing" forever
failed      (Replicate) a failed prediction with a model error
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from PIL import Image, ImageDraw
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from harness import Server, running_server, serve_asgi
from imagegate.clock import Clock
from imagegate.config import Settings
from imagegate.providers.ideogram import IDEOGRAM_V4

IDEOGRAM_KEY = "ideo-test-key-7f3a9c"
REPLICATE_TOKEN = "r8_test_token_51bd0e"
RESOLUTIONS = set(IDEOGRAM_V4.sizes.values())
F = TypeVar("F", bound="Fake")


@dataclass
class Call:
    path: str
    headers: dict[str, str]
    body: Any
    at: float  # the server clock's now() on arrival


def png(resolution: str, noise: bool = False) -> bytes:
    width, height = (int(n) for n in resolution.split("x"))
    if noise:
        image = Image.frombytes("RGB", (width, height), os.urandom(width * height * 3))
    else:
        image = Image.new("RGBA", (width, height), (30, 90, 200, 255))
        ImageDraw.Draw(image).rectangle((width // 4, height // 4, width // 2, height // 2),
                                        fill=(250, 200, 40, 128))  # fmt: skip
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


@dataclass
class Fake:
    script: list[str] = field(default_factory=list)
    clock: Clock = field(default_factory=Clock)
    base_url: str = ""
    image_base: str = ""  # where its image URLs point (default: its own base_url)
    calls: list[Call] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)
    in_flight: int = 0
    peak_in_flight: int = 0
    _hang: asyncio.Event = field(default_factory=asyncio.Event)
    _release: asyncio.Event = field(default_factory=asyncio.Event)

    def release(self) -> None:
        self._release.set()

    def next_answer(self) -> str:
        n = len(self.calls) - 1
        return self.script[n] if n < len(self.script) else "ok"

    async def record(self, request: Request) -> Call:
        raw = await request.body()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw
        call = Call(request.url.path, dict(request.headers), body, self.clock.now())
        self.calls.append(call)
        return call

    def image_url(self, answer: str, resolution: str) -> str:
        name = f"{uuid.uuid4().hex}.png"
        if answer != "expired":
            self.files[name] = png(resolution, noise=answer == "oversized")
        return f"{self.image_base or self.base_url}/files/{name}?exp=1&sig=0badc0de"

    async def file(self, request: Request) -> Response:
        data = self.files.get(request.path_params["name"])
        if data is None:
            return PlainTextResponse("expired", status_code=404)
        return Response(data, media_type="image/png")

    def app(self) -> Starlette:
        raise NotImplementedError

    async def common(self, answer: str) -> Response | None:
        """The answers both protocols give alike; None for the protocol-specific ones."""
        if answer.startswith("429"):
            seconds = answer.partition(":")[2] or "1"
            return JSONResponse({"error": "slow down"}, 429, {"Retry-After": seconds})
        if answer in ("500", "502"):
            return PlainTextResponse("upstream trouble", status_code=int(answer))
        if answer == "401":
            return JSONResponse({"error": "Unauthorized"}, 401)
        if answer == "hang":
            await self._hang.wait()
            return PlainTextResponse("", status_code=504)
        if answer == "malformed":
            return PlainTextResponse("<html>Bad Gateway</html>", 200)
        return None


class FakeIdeogram(Fake):
    """POST /v1/ideogram-v4/generate with an Api-Key header and a JSON body."""

    async def generate(self, request: Request) -> Response:
        call = await self.record(request)
        if call.headers.get("api-key") != IDEOGRAM_KEY:
            return JSONResponse({"error": "Unauthorized"}, 401)
        body = call.body if isinstance(call.body, dict) else {}
        prompt, resolution = body.get("text_prompt"), body.get("resolution")
        if not isinstance(prompt, str) or resolution not in RESOLUTIONS:
            return JSONResponse({"error": "Invalid input provided."}, 400)
        if body.get("rendering_speed") not in ("TURBO", "DEFAULT", "QUALITY"):
            return JSONResponse({"error": "Invalid rendering speed."}, 400)
        answer = self.next_answer()
        return await self.common(answer) or await self._answer(answer, body["resolution"])

    async def _answer(self, answer: str, resolution: str) -> Response:
        if answer == "safety":
            return JSONResponse(
                {"error": "Prompt provided failed safety check due to prohibited content."}, 422
            )
        if answer == "unsafe":
            item = {"is_image_safe": False, "url": None, "seed": 1, "resolution": resolution}
            return JSONResponse({"created": "2026-11-24T00:00:00+00:00", "data": [item]})
        if answer == "minimal":
            return JSONResponse({"data": [{"url": self.image_url(answer, resolution)}]})
        if answer == "hold":
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            await self._release.wait()
            self.in_flight -= 1
        item = {
            "url": self.image_url(answer, resolution),
            "is_image_safe": True,
            "seed": 12345,
            "resolution": resolution,
            "style_type": "GENERAL",  # a field the adapter does not know
            "upscaled_resolution": None,
        }
        return JSONResponse({"created": "2026-11-24T00:00:00+00:00", "data": [item]})

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route(IDEOGRAM_V4.path, self.generate, methods=["POST"]),
                Route("/files/{name}", self.file),
            ]
        )


@dataclass
class Prediction:
    id: str
    answer: str
    resolution: str
    polls: int = 0
    canceled: bool = False


class FakeReplicate(Fake):
    """POST /v1/models/{owner}/{name}/predictions (Bearer token, Prefer: wait), then
    GET /v1/predictions/{id} and POST /v1/predictions/{id}/cancel."""

    predictions: dict[str, Prediction]

    def __init__(self, script: list[str] | None = None) -> None:
        super().__init__(script=script or [])
        self.predictions = {}
        self.foreign_poll_url = ""  # set: urls.get points at another host

    def authorized(self, call: Call) -> bool:
        return call.headers.get("authorization") == f"Bearer {REPLICATE_TOKEN}"

    async def create(self, request: Request) -> Response:
        call = await self.record(request)
        if not self.authorized(call):
            return JSONResponse({"detail": "You did not pass a valid authentication token"}, 401)
        model_input = call.body.get("input") if isinstance(call.body, dict) else None
        if not isinstance(model_input, dict) or not isinstance(model_input.get("prompt"), str):
            return JSONResponse({"detail": "input.prompt is required"}, 422)
        slug = f"{request.path_params['owner']}/{request.path_params['name']}"
        resolution = _resolution(slug, model_input)
        if resolution is None:
            return JSONResponse({"detail": f"input is not valid for {slug}"}, 422)
        answer = self.next_answer()
        common = await self.common(answer)
        if common is not None:
            return common
        prediction = Prediction(uuid.uuid4().hex[:20], answer, resolution)
        self.predictions[prediction.id] = prediction
        first = "starting" if answer in ("async", "stuck") else "final"
        return JSONResponse(self.render(prediction, first), 201)

    async def get(self, request: Request) -> Response:
        call = await self.record(request)
        prediction = self.predictions.get(request.path_params["id"])
        if not self.authorized(call) or prediction is None:
            return JSONResponse({"detail": "Not found."}, 404 if self.authorized(call) else 401)
        prediction.polls += 1
        if prediction.canceled:
            return JSONResponse(self.render(prediction, "canceled"))
        if prediction.answer == "stuck" or prediction.polls < 2:
            return JSONResponse(self.render(prediction, "processing"))
        return JSONResponse(self.render(prediction, "final"))

    async def cancel(self, request: Request) -> Response:
        call = await self.record(request)
        prediction = self.predictions.get(request.path_params["id"])
        if not self.authorized(call) or prediction is None:
            return JSONResponse({"detail": "Not found."}, 404)
        prediction.canceled = True
        return JSONResponse(self.render(prediction, "canceled"))

    def render(self, prediction: Prediction, status: str) -> dict[str, Any]:
        get_url = self.foreign_poll_url or f"{self.base_url}/v1/predictions/{prediction.id}"
        body: dict[str, Any] = {
            "id": prediction.id,
            "model": "ideogram-ai/ideogram-v4",
            "status": status,
            "output": None,
            "error": None,
            "logs": "",
            "urls": {"get": get_url, "cancel": f"{get_url}/cancel"},
            "created_at": "2026-11-24T00:00:00.000Z",
        }
        if status == "final":
            body.update(self._final(prediction))
        return body

    def _final(self, prediction: Prediction) -> dict[str, Any]:
        if prediction.answer == "safety":
            return {"status": "failed", "error": "NSFW content detected. Try a different prompt."}
        if prediction.answer == "failed":
            return {"status": "failed", "error": "CUDA error: out of memory"}
        url = self.image_url(prediction.answer, prediction.resolution)
        output: Any = [url] if prediction.answer == "async" else url
        return {"status": "succeeded", "output": output, "metrics": {"predict_time": 1.5}}

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/models/{owner}/{name}/predictions", self.create, methods=["POST"]),
                Route("/v1/predictions/{id}", self.get),
                Route("/v1/predictions/{id}/cancel", self.cancel, methods=["POST"]),
                Route("/files/{name}", self.file),
            ]
        )


# black-forest-labs/flux-schnell's inputs as Replicate documents them, and the size it makes.
FLUX_SCHNELL = "black-forest-labs/flux-schnell"
FLUX_SIZES = {
    "1:1": "1024x1024", "16:9": "1344x768", "9:16": "768x1344", "4:3": "1152x896",
    "3:4": "896x1152", "21:9": "1536x640", "3:2": "1216x832", "2:3": "832x1216",
}  # fmt: skip
FLUX_FORMATS = ("webp", "jpg", "png")


def _resolution(slug: str, model_input: dict[str, Any]) -> str | None:
    """The size of the image the model makes for ``model_input``; None: the input is invalid."""
    if slug == FLUX_SCHNELL:
        if "resolution" in model_input or model_input.get("output_format") not in FLUX_FORMATS:
            return None
        return FLUX_SIZES.get(model_input.get("aspect_ratio", "1:1"))
    resolution = model_input.get("resolution")
    return resolution if resolution in RESOLUTIONS else None


@asynccontextmanager
async def running(fake: F) -> AsyncIterator[F]:
    def unblock() -> None:
        fake._hang.set()
        fake._release.set()

    async with serve_asgi(fake.app(), on_exit=unblock) as base_url:
        fake.base_url = base_url
        yield fake


# Quick retries, so failure paths finish in well under a second; a test about a wait sets it.
FAST = {
    "upstream_backoff": 0.01,
    "upstream_timeout": 2.0,
    "replicate_poll_interval": 0.02,
    "circuit_failure_threshold": 1000,
    "upstream_allow_private": True,  # the fakes serve their images from loopback
}


def upstream_settings(
    settings: Settings,
    ideogram: FakeIdeogram | None = None,
    replicate: FakeReplicate | None = None,
    **overrides: Any,
) -> Settings:
    """``settings`` with the given fakes' credentials and URLs (and nothing else configured)."""
    update: dict[str, Any] = dict(FAST)
    if ideogram is not None:
        update |= {
            "ideogram_api_key": SecretStr(IDEOGRAM_KEY),
            "ideogram_base_url": ideogram.base_url,
        }
    if replicate is not None:
        update |= {
            "replicate_api_token": SecretStr(REPLICATE_TOKEN),
            "replicate_base_url": replicate.base_url,
        }
    return settings.model_copy(update=update | overrides)


@asynccontextmanager
async def server_for(settings: Settings, *fakes: Fake) -> AsyncIterator[Server]:
    """The server, with the fakes reading its clock (so calls are stamped in its time)."""
    async with running_server(settings) as server:
        for fake in fakes:
            fake.clock = server.clock
        yield server


async def calls_at_least(fake: Fake, n: int) -> bool:
    return len(fake.calls) >= n


async def sleeping_until(server: Server) -> list[float]:
    """The deadlines the server's code is sleeping until (a retry's wait)."""
    return list(server.clock.sleeping_until)

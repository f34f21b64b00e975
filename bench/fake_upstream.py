"""A loopback upstream speaking Ideogram's generate API that takes DELAY seconds per image.

Serves one small PNG at /files/img.png; every generation answers with its URL after the
delay, so in-flight capacity (not image work) is what a benchmark measures.

    python bench/fake_upstream.py PORT DELAY
"""

from __future__ import annotations

import asyncio
import io
import sys

import uvicorn
from PIL import Image
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 36), (40, 120, 200)).save(out, "PNG")
    return out.getvalue()


PNG = _png()
PORT, DELAY = int(sys.argv[1]), float(sys.argv[2])


async def generate(request: Request) -> Response:
    await request.body()
    await asyncio.sleep(DELAY)
    url = f"http://127.0.0.1:{PORT}/files/img.png"
    return JSONResponse({"data": [{"url": url, "is_image_safe": True, "seed": 1}]})


async def image(request: Request) -> Response:
    return Response(PNG, media_type="image/png")


app = Starlette(
    routes=[
        Route("/v1/ideogram-v4/generate", generate, methods=["POST"]),
        Route("/files/img.png", image),
    ]
)

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=PORT, log_level="warning", access_log=False,
                backlog=8192, limit_concurrency=None)  # fmt: skip

"""GET /images/YYYY/MM/DD/<name>: the hosted images, from local files or streamed from the
bucket (IMAGEGATE_S3_SERVE=redirect: a 307 to a presigned URL instead)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, RedirectResponse, Response, StreamingResponse

from imagegate.errors import UnknownEndpoint, UpstreamUnavailable
from imagegate.services import Services
from imagegate.storage.base import KEY_PATTERN, StorageUnavailable, Stored, expired
from imagegate.storage.s3 import S3ImageStore

router = APIRouter()
CACHE = {"Cache-Control": "public, max-age=31536000, immutable"}


@router.api_route("/images/{key:path}", methods=["GET", "HEAD"], include_in_schema=False)
async def get_image(key: str, request: Request) -> Response:
    services: Services = request.app.state.services
    days = services.settings.image_retention_days
    if KEY_PATTERN.match(key) and expired(key, services.clock.now(), days):
        kept = f"{days:g} day" + ("" if days == 1 else "s")
        raise UnknownEndpoint(f"Image '{key}' has expired: images are kept {kept}.")
    try:
        if isinstance(services.store, S3ImageStore) and services.settings.s3_serve == "redirect":
            return await _redirect(services.store, key)
        found = await services.store.open(key, body=request.method != "HEAD")
    except StorageUnavailable:
        # Not the image's fault, and worth trying again soon: 503, not 500.
        raise UpstreamUnavailable("The image store is unavailable; try again shortly.") from None
    if found is None:
        raise _missing(key)
    return _serve(found)


async def _redirect(store: S3ImageStore, key: str) -> Response:
    url = await store.signed_url(key)
    if url is None:
        raise _missing(key)
    return RedirectResponse(url, status_code=307)


def _serve(found: Stored) -> Response:
    if found.path is not None:
        return FileResponse(found.path, media_type=found.media_type, headers=CACHE)
    headers = {**CACHE, "Content-Length": str(found.size)}
    return StreamingResponse(found.chunks or _nothing(), media_type=found.media_type,
                             headers=headers)  # fmt: skip


def _missing(key: str) -> UnknownEndpoint:
    return UnknownEndpoint(f"Image '{key}' does not exist.")


async def _nothing() -> AsyncIterator[bytes]:
    return
    yield b""
